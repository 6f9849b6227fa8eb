//! The models of the `polls` app, as in Django's tutorial.

/// A poll question.
pub mod question {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "polls_question")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(column_type = "String(StringLen::N(200))")]
        pub question_text: String,
        pub pub_date: DateTimeUtc,
        #[sea_orm(has_many)]
        pub choices: HasMany<super::choice::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// One answer to a question, with its vote count.
pub mod choice {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "polls_choice")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub question_id: i64,
        #[sea_orm(column_type = "String(StringLen::N(200))")]
        pub choice_text: String,
        #[sea_orm(default_value = 0)]
        pub votes: i32,
        #[sea_orm(belongs_to, from = "question_id", to = "id", on_delete = "Cascade")]
        pub question: BelongsTo<super::question::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
