//! What a SeaORM entity declares, as Kiln's migration state.
//!
//! `makemigrations` compares the models of a project with what its migration
//! files build. This module reads the models side: each entity becomes a
//! [`ModelState`] through what SeaORM exposes publicly (the sea-query column
//! definitions it builds DDL from, its index statements, primary key and
//! relations), so that the state matches the tables SeaORM itself would
//! create.
//!
//! ```
//! use kiln::db::models::model_info;
//!
//! mod question {
//!     use kiln::db::prelude::*;
//!
//!     #[sea_orm::model]
//!     #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
//!     #[sea_orm(table_name = "polls_question")]
//!     pub struct Model {
//!         #[sea_orm(primary_key)]
//!         pub id: i64,
//!         #[sea_orm(column_type = "String(StringLen::N(200))", renamed_from = "text")]
//!         pub question_text: String,
//!     }
//!
//!     impl ActiveModelBehavior for ActiveModel {}
//! }
//!
//! let info = model_info::<question::Entity>().unwrap();
//! assert_eq!(info.state.primary_key, ["id"]);
//! assert_eq!(info.renamed_from["question_text"], "text");
//! ```

use std::collections::BTreeMap;

use sea_orm::sea_query::{
    ColumnType, Expr, ForeignKeyAction, Keyword, StringLen, TableName, TableRef, Value,
};
use sea_orm::{
    DbBackend, EntityTrait, IdenStatic, Iterable, PrimaryKeyToColumn, RelationTrait, Schema,
};

use super::migrations::{Action, DefaultValue, Field, ForeignKey, Index, ModelState, Type};

/// One entity, read for `makemigrations`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The table the entity declares.
    pub state: ModelState,
    /// Column name to the name it had before, from
    /// `#[sea_orm(renamed_from = "old")]`. These are declarations, not
    /// guesses: the autodetector renames without asking.
    pub renamed_from: BTreeMap<String, String>,
}

/// An entity that Kiln's migrations cannot represent, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A column type without a Kiln [`Type`].
    #[error(
        "column `{table}.{column}` has type {ty}, which Kiln's migrations do not support; \
         fix: declare a supported type with `#[sea_orm(column_type = \"...\")]` \
         (such as `Text`, `String(StringLen::N(100))`, `Binary`, `DateTime` or \
         `TimestampWithTimeZone`), or spell the database type with \
         `column_type = \"custom(\\\"...\\\")\"`"
    )]
    UnsupportedType {
        table: String,
        column: String,
        /// sea-query's name for the type.
        ty: String,
    },
    /// A default that is neither a literal nor a plain SQL expression.
    #[error(
        "column `{table}.{column}` has the default {default}, which Kiln's migrations cannot \
         write down; fix: use a literal (`default_value = 0`) or spell the SQL with \
         `default_expr = \"Expr::cust(\\\"...\\\")\"`"
    )]
    UnsupportedDefault {
        table: String,
        column: String,
        /// The default as sea-query holds it.
        default: String,
    },
    /// Raw SQL after the column's type (`#[sea_orm(extra = "...")]`), which
    /// the state has no place for and would silently lose.
    #[error(
        "column `{table}.{column}` has `extra = {extra:?}`, which Kiln's migrations cannot \
         carry; fix: remove `extra` from the entity and add the SQL in a migration with \
         `run_sql`"
    )]
    Extra {
        table: String,
        column: String,
        extra: String,
    },
    /// A foreign key over several columns; Kiln's foreign keys have one.
    #[error(
        "table `{table}` has a foreign key on ({}) to `{target}`; Kiln's migrations support \
         single-column foreign keys only; fix: mark the relation `skip_fk` and create the \
         constraint with `run_sql`",
        columns.join(", ")
    )]
    CompositeForeignKey {
        table: String,
        columns: Vec<String>,
        target: String,
    },
    /// A relation whose table is not a plain table name.
    #[error(
        "table `{table}` has a relation to {target}, which is not a table; fix: mark the \
         relation `skip_fk`"
    )]
    UnsupportedRelation { table: String, target: String },
    /// A table in a named schema; migration state identifies tables by name
    /// alone.
    #[error(
        "table `{table}` is declared in schema `{schema}`; Kiln's migrations manage the \
         default schema only; fix: remove `schema_name` from the entity, or set the schema \
         with the connection's search path"
    )]
    SchemaName { table: String, schema: String },
}

/// Reads entity `E` as a migration state with its rename declarations.
///
/// # Errors
///
/// A [`ModelError`] naming the table and column when the entity uses
/// something the state cannot represent: a column type without a Kiln
/// [`Type`], a default that is not a literal or SQL keyword, `extra` SQL,
/// a composite foreign key or a schema-qualified table.
pub fn model_info<E>() -> Result<ModelInfo, ModelError>
where
    E: EntityTrait + Default,
{
    let entity = E::default();
    let table = entity.table_name().to_owned();
    if let Some(schema) = entity.schema_name() {
        return Err(ModelError::SchemaName {
            table,
            schema: schema.to_owned(),
        });
    }
    // SQLite keeps enum columns as `ColumnType::Enum`; the PostgreSQL and
    // MySQL builders turn them into backend spellings that lose the variants.
    let schema = Schema::new(DbBackend::Sqlite);

    let mut state = ModelState::new(&table);
    let mut renamed_from = BTreeMap::new();
    for column in E::Column::iter() {
        let def = schema.get_column_def::<E>(column);
        let name = def.get_column_name();
        let spec = def.get_column_spec();
        let sea_type = def
            .get_column_type()
            .ok_or_else(|| ModelError::UnsupportedType {
                table: table.clone(),
                column: name.clone(),
                ty: "(none)".to_owned(),
            })?;
        if let Some(extra) = &spec.extra {
            return Err(ModelError::Extra {
                table,
                column: name,
                extra: extra.clone(),
            });
        }
        let mut field = Field::new(&name, kiln_type(sea_type, &table, &name)?);
        field.null = spec.nullable != Some(false);
        field.unique = spec.unique;
        field.auto_increment = spec.auto_increment;
        field.default = match &spec.default {
            Some(expr) => kiln_default(expr, &table, &name)?,
            None => None,
        };
        if let Some(old) = spec.comment.as_deref().and_then(renamed_from_comment) {
            renamed_from.insert(name, old);
        }
        state.fields.push(field);
    }
    state.primary_key = E::PrimaryKey::iter()
        .map(|key| key.into_column().as_str().to_owned())
        .collect();

    for index in schema.create_index_from_entity(entity) {
        let spec = index.get_index_spec();
        state.indexes.push(Index {
            name: spec.get_name().unwrap_or_default().to_owned(),
            columns: spec.get_column_names(),
            unique: index.is_unique_key(),
        });
    }

    for relation in E::Relation::iter() {
        let relation = relation.def();
        // The side that holds the key column is the one that is not the
        // "owner"; `create_table_from_entity` makes the same choice.
        if relation.is_owner || relation.skip_fk {
            continue;
        }
        let target =
            table_name(&relation.to_tbl).ok_or_else(|| ModelError::UnsupportedRelation {
                table: table.clone(),
                target: format!("{:?}", relation.to_tbl),
            })?;
        let from: Vec<String> = relation.from_col.iter().map(ToString::to_string).collect();
        let to: Vec<String> = relation.to_col.iter().map(ToString::to_string).collect();
        let ([column], [target_column]) = (from.as_slice(), to.as_slice()) else {
            return Err(ModelError::CompositeForeignKey {
                table,
                columns: from,
                target,
            });
        };
        let key = ForeignKey::to(&target, target_column)
            .on_delete(action(relation.on_delete))
            .on_update(action(relation.on_update));
        match state.get_field_mut(column) {
            Some(field) => field.foreign_key = Some(key),
            // SeaORM checks relation columns at compile time, so this is a
            // hand-written `RelationDef` naming another table's column.
            None => {
                return Err(ModelError::UnsupportedRelation {
                    table,
                    target: format!("`{target}` from a column `{column}` it does not have"),
                });
            }
        }
    }
    Ok(ModelInfo {
        state,
        renamed_from,
    })
}

/// Reads entity `E` as a migration state, without its rename declarations.
///
/// # Errors
///
/// As [`model_info`].
pub fn model_state<E>() -> Result<ModelState, ModelError>
where
    E: EntityTrait + Default,
{
    model_info::<E>().map(|info| info.state)
}

pub(crate) fn table_name(table: &TableRef) -> Option<String> {
    match table {
        TableRef::Table(TableName(None, name), _) => Some(name.to_string()),
        _ => None,
    }
}

fn action(action: Option<ForeignKeyAction>) -> Action {
    match action {
        Some(ForeignKeyAction::Restrict) => Action::Restrict,
        Some(ForeignKeyAction::Cascade) => Action::Cascade,
        Some(ForeignKeyAction::SetNull) => Action::SetNull,
        Some(ForeignKeyAction::SetDefault) => Action::SetDefault,
        // What SQL does when no action is given.
        _ => Action::NoAction,
    }
}

/// SeaORM has no public getter for `renamed_from`; it appends
/// `renamed_from "old"` to the column comment it hands to sea-query.
fn renamed_from_comment(comment: &str) -> Option<String> {
    const MARK: &str = "renamed_from \"";
    let start = comment.rfind(MARK)? + MARK.len();
    let old = comment[start..].strip_suffix('"')?;
    (!old.is_empty()).then(|| old.to_owned())
}

fn kiln_type(ty: &ColumnType, table: &str, column: &str) -> Result<Type, ModelError> {
    Ok(match ty {
        ColumnType::Char(length) => Type::Char(*length),
        ColumnType::String(StringLen::N(length)) => Type::String(Some(*length)),
        ColumnType::String(StringLen::None) => Type::String(None),
        ColumnType::Text => Type::Text,
        // `Vec<u8>` is `VarBinary(None)`; a blob is the same bytes.
        ColumnType::Blob | ColumnType::VarBinary(StringLen::None) => Type::Binary,
        ColumnType::TinyInteger => Type::TinyInteger,
        ColumnType::SmallInteger => Type::SmallInteger,
        ColumnType::Integer => Type::Integer,
        ColumnType::BigInteger => Type::BigInteger,
        ColumnType::TinyUnsigned => Type::TinyUnsigned,
        ColumnType::SmallUnsigned => Type::SmallUnsigned,
        ColumnType::Unsigned => Type::Unsigned,
        ColumnType::BigUnsigned => Type::BigUnsigned,
        ColumnType::Float => Type::Float,
        ColumnType::Double => Type::Double,
        ColumnType::Decimal(precision) => Type::Decimal(*precision),
        ColumnType::Boolean => Type::Boolean,
        ColumnType::Date => Type::Date,
        ColumnType::Time => Type::Time,
        ColumnType::DateTime => Type::DateTime,
        ColumnType::TimestampWithTimeZone => Type::TimestampTz,
        ColumnType::Uuid => Type::Uuid,
        ColumnType::Json => Type::Json,
        ColumnType::JsonBinary => Type::JsonBinary,
        ColumnType::Enum { name, variants } => Type::Enum {
            name: name.to_string(),
            variants: variants.iter().map(ToString::to_string).collect(),
        },
        ColumnType::Custom(name) => Type::Custom(name.to_string()),
        // `StringLen::Max`, fixed-length binary, `Timestamp` (which differs
        // from `DateTime` on MySQL), money, intervals, arrays, network and
        // vector types: mapping them to a near type would change the column.
        other => {
            return Err(ModelError::UnsupportedType {
                table: table.to_owned(),
                column: column.to_owned(),
                ty: format!("{other:?}"),
            });
        }
    })
}

fn kiln_default(
    expr: &Expr,
    table: &str,
    column: &str,
) -> Result<Option<DefaultValue>, ModelError> {
    let unsupported = || ModelError::UnsupportedDefault {
        table: table.to_owned(),
        column: column.to_owned(),
        default: format!("{expr:?}"),
    };
    Ok(match expr {
        Expr::Value(value) | Expr::Constant(value) => {
            value_default(value).ok_or_else(unsupported)?
        }
        Expr::Keyword(keyword) => match keyword {
            // `DEFAULT NULL` is what a nullable column without default does.
            Keyword::Null => None,
            Keyword::CurrentDate => Some(DefaultValue::Expr("CURRENT_DATE".to_owned())),
            Keyword::CurrentTime => Some(DefaultValue::Expr("CURRENT_TIME".to_owned())),
            Keyword::CurrentTimestamp => Some(DefaultValue::Expr("CURRENT_TIMESTAMP".to_owned())),
            Keyword::Custom(name) => Some(DefaultValue::Expr(name.to_string())),
            _ => return Err(unsupported()),
        },
        Expr::Custom(sql) => Some(DefaultValue::Expr(sql.to_string())),
        _ => return Err(unsupported()),
    })
}

/// A literal default; `Some(None)` for `NULL`, `None` when unsupported.
fn value_default(value: &Value) -> Option<Option<DefaultValue>> {
    fn int(value: Option<impl Into<i64>>) -> Option<DefaultValue> {
        value.map(|value| DefaultValue::Int(value.into()))
    }
    Some(match value {
        Value::Bool(value) => value.map(DefaultValue::Bool),
        Value::TinyInt(value) => int(*value),
        Value::SmallInt(value) => int(*value),
        Value::Int(value) => int(*value),
        Value::BigInt(value) => int(*value),
        Value::TinyUnsigned(value) => int(*value),
        Value::SmallUnsigned(value) => int(*value),
        Value::Unsigned(value) => int(*value),
        Value::BigUnsigned(None) => None,
        Value::BigUnsigned(Some(value)) => Some(DefaultValue::Int(i64::try_from(*value).ok()?)),
        // Through the shortest decimal spelling, so that `0.1_f32` stays 0.1
        // rather than 0.10000000149011612.
        Value::Float(value) => value.map(|value| {
            DefaultValue::Float(value.to_string().parse().unwrap_or(f64::from(value)))
        }),
        Value::Double(value) => value.map(DefaultValue::Float),
        Value::String(value) => value.clone().map(DefaultValue::Str),
        Value::Char(value) => value.map(|value| DefaultValue::Str(value.to_string())),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tutorial's two models, a tag model, a many-to-many join table
    /// with a composite key, and a model with every column option.
    mod question {
        use sea_orm::entity::prelude::*;

        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "polls_question")]
        pub(crate) struct Model {
            #[sea_orm(primary_key)]
            pub id: i64,
            #[sea_orm(column_type = "String(StringLen::N(200))")]
            pub question_text: String,
            #[sea_orm(default_expr = "Expr::current_timestamp()")]
            pub pub_date: DateTimeUtc,
            #[sea_orm(has_many)]
            pub choices: HasMany<super::choice::Entity>,
            #[sea_orm(has_many, via = "question_tag")]
            pub tags: HasMany<super::tag::Entity>,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    mod choice {
        use sea_orm::entity::prelude::*;

        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "polls_choice")]
        pub(crate) struct Model {
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

    mod tag {
        use sea_orm::entity::prelude::*;

        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "polls_tag")]
        pub(crate) struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            #[sea_orm(unique)]
            pub name: String,
            #[sea_orm(has_many, via = "question_tag")]
            pub questions: HasMany<super::question::Entity>,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    mod question_tag {
        use sea_orm::entity::prelude::*;

        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "polls_question_tag")]
        pub(crate) struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub question_id: i64,
            #[sea_orm(primary_key, auto_increment = false)]
            pub tag_id: i32,
            #[sea_orm(belongs_to, from = "question_id", to = "id", on_delete = "Cascade")]
            pub question: BelongsTo<super::question::Entity>,
            #[sea_orm(belongs_to, from = "tag_id", to = "id", on_update = "Restrict")]
            pub tag: BelongsTo<super::tag::Entity>,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    mod profile {
        use sea_orm::entity::prelude::*;

        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "accounts_profile")]
        pub(crate) struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            #[sea_orm(unique_key = "tenant_handle")]
            pub tenant: i32,
            #[sea_orm(unique_key = "tenant_handle", renamed_from = "nick")]
            pub handle: String,
            #[sea_orm(indexed, comment = "shown on the profile page")]
            pub city: Option<String>,
            #[sea_orm(column_type = "Text")]
            pub bio: Option<String>,
            #[sea_orm(default_value = true)]
            pub active: bool,
            #[sea_orm(default_value = 1.5)]
            pub score: f64,
            #[sea_orm(default_value = "en")]
            pub language: String,
            pub settings: Json,
            pub avatar: Option<Vec<u8>>,
            pub balance: Decimal,
            pub born: Option<Date>,
            pub seen: DateTime,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    mod wide {
        use sea_orm::entity::prelude::*;

        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "wide")]
        pub(crate) struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            #[sea_orm(column_type = "Timestamp")]
            pub stamp: DateTime,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    mod checked {
        use sea_orm::entity::prelude::*;

        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "checked")]
        pub(crate) struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            #[sea_orm(extra = "CHECK (price > 0)")]
            pub price: i32,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    #[test]
    fn reads_columns_key_and_defaults_of_the_tutorial_models() {
        let question = model_state::<question::Entity>().unwrap();
        assert_eq!(
            question,
            ModelState::new("polls_question")
                .field(Field::new("id", Type::BigInteger).auto_increment())
                .field(Field::new("question_text", Type::string(200)))
                .field(
                    Field::new("pub_date", Type::TimestampTz)
                        .default(DefaultValue::Expr("CURRENT_TIMESTAMP".to_owned()))
                )
                .primary_key(&["id"])
        );
    }

    #[test]
    fn belongs_to_becomes_a_foreign_key_with_its_actions() {
        let choice = model_state::<choice::Entity>().unwrap();
        assert_eq!(
            choice,
            ModelState::new("polls_choice")
                .field(Field::new("id", Type::BigInteger).auto_increment())
                .field(
                    Field::new("question_id", Type::BigInteger).references(
                        ForeignKey::to("polls_question", "id").on_delete(Action::Cascade)
                    )
                )
                .field(Field::new("choice_text", Type::string(200)))
                .field(Field::new("votes", Type::Integer).default(0))
                .primary_key(&["id"])
        );
    }

    #[test]
    fn join_table_has_a_composite_key_and_two_foreign_keys() {
        let join = model_state::<question_tag::Entity>().unwrap();
        assert_eq!(
            join,
            ModelState::new("polls_question_tag")
                .field(
                    Field::new("question_id", Type::BigInteger).references(
                        ForeignKey::to("polls_question", "id").on_delete(Action::Cascade)
                    )
                )
                .field(
                    Field::new("tag_id", Type::Integer)
                        .references(ForeignKey::to("polls_tag", "id").on_update(Action::Restrict))
                )
                .primary_key(&["question_id", "tag_id"])
        );
        // The other side of a many-to-many holds no key.
        let tag = model_state::<tag::Entity>().unwrap();
        assert!(tag.fields.iter().all(|field| field.foreign_key.is_none()));
        assert!(tag.get_field("name").unwrap().unique);
        assert!(tag.indexes.is_empty());
    }

    #[test]
    fn reads_nullability_indexes_unique_keys_types_and_renames() {
        let info = model_info::<profile::Entity>().unwrap();
        let expected = ModelState::new("accounts_profile")
            .field(Field::new("id", Type::Uuid))
            .field(Field::new("tenant", Type::Integer))
            .field(Field::new("handle", Type::String(None)))
            .field(Field::new("city", Type::String(None)).null())
            .field(Field::new("bio", Type::Text).null())
            .field(Field::new("active", Type::Boolean).default(true))
            .field(Field::new("score", Type::Double).default(1.5))
            .field(Field::new("language", Type::String(None)).default("en"))
            .field(Field::new("settings", Type::Json))
            .field(Field::new("avatar", Type::Binary).null())
            .field(Field::new("balance", Type::Decimal(None)))
            .field(Field::new("born", Type::Date).null())
            .field(Field::new("seen", Type::DateTime))
            .primary_key(&["id"])
            .index(Index::new("idx-accounts_profile-city", &["city"]))
            .index(
                Index::new("idx-accounts_profile-tenant_handle", &["tenant", "handle"]).unique(),
            );
        assert_eq!(info.state, expected);
        assert_eq!(
            info.renamed_from,
            BTreeMap::from([("handle".to_owned(), "nick".to_owned())])
        );
    }

    #[test]
    fn refuses_types_and_sql_it_cannot_carry_naming_the_column_and_fix() {
        let error = model_state::<wide::Entity>().unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("`wide.stamp`")
                && message.contains("Timestamp")
                && message.contains("fix:"),
            "{message}"
        );
        let error = model_state::<checked::Entity>().unwrap_err();
        assert!(matches!(error, ModelError::Extra { ref column, .. } if column == "price"));
        assert!(error.to_string().contains("run_sql"), "{error}");
    }

    #[test]
    fn renamed_from_survives_a_comment() {
        assert_eq!(
            renamed_from_comment("shown; renamed_from \"nick\"").as_deref(),
            Some("nick")
        );
        assert_eq!(renamed_from_comment("just a comment"), None);
    }

    #[test]
    fn defaults_of_every_literal_kind() {
        let cases = [
            (Expr::val(7_u64), Some(DefaultValue::Int(7))),
            (Expr::val(0.1_f32), Some(DefaultValue::Float(0.1))),
            (Expr::val('x'), Some(DefaultValue::Str("x".to_owned()))),
            (Expr::Keyword(Keyword::Null), None),
            (
                Expr::Keyword(Keyword::CurrentDate),
                Some(DefaultValue::Expr("CURRENT_DATE".to_owned())),
            ),
            (
                Expr::cust("gen_random_uuid()"),
                Some(DefaultValue::Expr("gen_random_uuid()".to_owned())),
            ),
        ];
        for (expr, expected) in cases {
            assert_eq!(kiln_default(&expr, "t", "c").unwrap(), expected, "{expr:?}");
        }
        let error = kiln_default(&Expr::val(u64::MAX), "t", "c").unwrap_err();
        assert!(error.to_string().contains("`t.c`"), "{error}");
    }
}
