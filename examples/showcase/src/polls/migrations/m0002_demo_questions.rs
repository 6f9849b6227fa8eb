//! A data migration, started with `makemigrations --empty polls` and written
//! by hand: seeds demo questions so that a fresh showcase has something to
//! vote on. Rolling it back deletes them.

use kiln::db::migrations::*;
use kiln::db::{DatabaseTransaction, DbErr};

const QUESTIONS: &[(&str, &[&str])] = &[
    ("What's new?", &["Not much", "The sky", "Kiln"]),
    (
        "Which framework do you reach for first?",
        &["Django", "Node.js", "Kiln, now"],
    ),
];

fn seed(db: &DatabaseTransaction) -> BoxFuture<'_, Result<(), DbErr>> {
    Box::pin(async move {
        use kiln::db::prelude::*;

        use crate::polls::models::{choice, question};

        for (text, choices) in QUESTIONS {
            let question = question::ActiveModel {
                question_text: Set((*text).to_owned()),
                pub_date: Set(ChronoUtc::now()),
                ..Default::default()
            }
            .insert(db)
            .await?;
            for choice_text in *choices {
                choice::ActiveModel {
                    question_id: Set(question.id),
                    choice_text: Set((*choice_text).to_owned()),
                    votes: Set(0),
                    ..Default::default()
                }
                .insert(db)
                .await?;
            }
        }
        Ok(())
    })
}

fn unseed(db: &DatabaseTransaction) -> BoxFuture<'_, Result<(), DbErr>> {
    Box::pin(async move {
        use kiln::db::prelude::*;

        use crate::polls::models::{choice, question};

        let texts = QUESTIONS.iter().map(|(text, _)| *text);
        let ids: Vec<i64> = question::Entity::find()
            .filter(question::Column::QuestionText.is_in(texts))
            .all(db)
            .await?
            .into_iter()
            .map(|question| question.id)
            .collect();
        // Choices first: SQLite runs migrations with foreign keys off, so
        // ON DELETE CASCADE would not fire.
        choice::Entity::delete_many()
            .filter(choice::Column::QuestionId.is_in(ids.clone()))
            .exec(db)
            .await?;
        question::Entity::delete_many()
            .filter(question::Column::Id.is_in(ids))
            .exec(db)
            .await?;
        Ok(())
    })
}

pub(crate) fn migration() -> Migration {
    Migration::new("0002_demo_questions")
        .depends_on("polls", "0001_initial")
        .run_rust(DataStep::new("seed demo questions", seed).backwards(unseed))
}
