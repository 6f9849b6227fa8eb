//! The model of the `chat` app: one stored message.

/// A message said in a room: saved before it is broadcast, so the room's
/// history on the page and the live stream agree.
pub mod message {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "chat_message")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The room's name (see `chat::room_name`).
        #[sea_orm(indexed, column_type = "String(StringLen::N(40))")]
        pub room: String,
        pub user_id: i64,
        /// As typed: escaping is the output's job (templates, `textContent`).
        #[sea_orm(column_type = "String(StringLen::N(500))")]
        pub text: String,
        pub created: DateTimeUtc,
        #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
        pub user: BelongsTo<kiln::auth::user::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
