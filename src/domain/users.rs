//! Users as this service knows them: provisioned on first sight (ids come from the main
//! SoundHash API), with the flags administrators set.

use super::time::Timestamp;

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: Timestamp,
}
