//! Fresh ids for new rows and batches, and fresh public codes.

use crate::domain::codes;

/// The random source failed (not expected on Workers); an internal error.
#[derive(Debug)]
pub struct RandomError(getrandom::Error);

impl std::fmt::Display for RandomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "getrandom: {}", self.0)
    }
}

/// A fresh public code: `prefix` and 8 characters from a CSPRNG (domain::codes).
pub fn new_code(prefix: &str) -> Result<String, RandomError> {
    let mut random = [0u8; codes::RANDOM_LEN];
    getrandom::fill(&mut random).map_err(RandomError)?;
    Ok(codes::generate(prefix, random))
}

/// A request id: a UUID v4 from a per-isolate generator seeded once from the CSPRNG (a request id
/// must be unique, not secret, and asking the runtime for random bytes on every request costs
/// the click path more than the rest of its id).
pub fn request_id() -> String {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let mut seed = [0u8; 8];
            // Without the CSPRNG (not expected), ids stay unique per isolate by the counter below.
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed)
        });
    }
    // SplitMix64: distinct outputs for distinct states, and the state only moves forward.
    let next = || {
        STATE.with(|s| {
            let state = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            s.set(state);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let bytes = ((u128::from(next()) << 64) | u128::from(next())).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// A fresh id for new rows: UUID v7, so ids sort by creation time (lists ordered by
/// `(created_at, id)` keep the order rows were written in, also within one second).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4_and_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 4)));
    }

    #[test]
    fn ids_sort_by_creation() {
        let ids: Vec<String> = (0..100).map(|_| new_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn codes_carry_their_prefix() {
        let code = new_code(codes::AFFILIATE).unwrap();
        assert!(code.starts_with(codes::AFFILIATE), "{code}");
    }
}
