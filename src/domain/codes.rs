//! Public codes (`AFF…`, `REF…`, `PROMO…`): a prefix and 8 characters from an alphabet without
//! look-alikes (no 0/O, 1/I), drawn from a CSPRNG by the caller. 32 symbols × 8 = 40 bits.

pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
pub const RANDOM_LEN: usize = 8;

pub const AFFILIATE: &str = "AFF";
pub const REFERRAL: &str = "REF";

/// `prefix` followed by 8 symbols taken from `random` (5 bits of each byte: unbiased, 32 | 256).
pub fn generate(prefix: &str, random: [u8; RANDOM_LEN]) -> String {
    let mut code = String::with_capacity(prefix.len() + RANDOM_LEN);
    code.push_str(prefix);
    code.extend(random.iter().map(|b| ALPHABET[usize::from(b & 31)] as char));
    code
}

/// Normalises user input (trimmed, upper-cased) and returns it when it has the shape of a code
/// with this prefix; `None` otherwise (which callers answer like an unknown code).
pub fn parse(prefix: &str, input: &str) -> Option<String> {
    let code = input.trim().to_ascii_uppercase();
    let rest = code.strip_prefix(prefix)?;
    (rest.len() == RANDOM_LEN && rest.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alphabet_has_no_look_alikes() {
        for c in [b'0', b'O', b'1', b'I'] {
            assert!(!ALPHABET.contains(&c));
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), 32);
    }

    #[test]
    fn parse_normalises_and_rejects() {
        assert_eq!(parse(AFFILIATE, " aff23456789 ").as_deref(), Some("AFF23456789"));
        assert_eq!(parse(AFFILIATE, "AFF2345678"), None); // too short
        assert_eq!(parse(AFFILIATE, "AFF234567890"), None); // 0 and too long
        assert_eq!(parse(AFFILIATE, "AFFO2345678"), None); // O is not in the alphabet
        assert_eq!(parse(AFFILIATE, "REF23456789"), None); // other prefix
        assert_eq!(parse(REFERRAL, "ref23456789").as_deref(), Some("REF23456789"));
        assert_eq!(parse(AFFILIATE, "AFF2345678é"), None);
    }

    proptest! {
        #[test]
        fn generated_codes_parse(random in any::<[u8; 8]>()) {
            let code = generate(AFFILIATE, random);
            prop_assert_eq!(code.len(), 11);
            prop_assert_eq!(parse(AFFILIATE, &code), Some(code.clone()));
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,20}") {
            let _ = parse(REFERRAL, &input);
        }
    }
}
