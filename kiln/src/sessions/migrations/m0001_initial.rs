//! Written by hand in the format of `makemigrations` (the sessions app
//! registers no model: its table is Kiln's, read and written by
//! `DatabaseStore` alone).
//!
//! - Create model kiln_session

use crate::db::migrations::{Field, Index, Migration, ModelState, Type};

/// The migration `0001_initial` of the sessions app.
pub(crate) fn migration() -> Migration {
    Migration::new("0001_initial").create_model(
        ModelState::new("kiln_session")
            // 43 characters: base64url of 32 random bytes.
            .field(Field::new("session_key", Type::string(43)))
            .field(Field::new("session_data", Type::Text))
            .field(Field::new("expire_date", Type::TimestampTz))
            .primary_key(&["session_key"])
            // `clearsessions` deletes by expiry.
            .index(Index::new("kiln_session_expire_date", &["expire_date"])),
    )
}
