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

/// A fresh id for new rows: UUID v7, so ids sort by creation time (lists ordered by
/// `(created_at, id)` keep the order rows were written in, also within one second).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
