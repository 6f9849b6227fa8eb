//! The query helpers Django users reach for, on top of SeaORM.
//!
//! SeaORM 2 already has most of Django's `QuerySet` API under other names,
//! and Kiln re-exports it rather than wrapping it:
//!
//! | Django | SeaORM (re-exported from `kiln::db`) |
//! |---|---|
//! | `qs.count()` | [`PaginatorTrait::count`](sea_orm::PaginatorTrait::count) |
//! | `qs.exists()` | [`SelectExt::exists`](sea_orm::SelectExt::exists) |
//! | `Model.objects.bulk_create` without batching | `Entity::insert_many(..)` |
//! | `transaction.atomic()` as a block | [`TransactionTrait::transaction`](sea_orm::TransactionTrait::transaction) |
//!
//! What this module adds is what SeaORM lacks or spells differently:
//! [`get_object_or_404`], a [`Paginator`] with Django's page semantics,
//! race-safe [`get_or_create`] and [`update_or_create`], a [`bulk_create`]
//! that batches under each backend's bind-parameter limit, aggregates
//! ([`AggregateExt`]) and [`atomic`], whose errors are the caller's own type.
//!
//! # Examples
//!
//! ```
//! # mod question {
//! #     use kiln::db::prelude::*;
//! #     #[sea_orm::model]
//! #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
//! #     #[sea_orm(table_name = "polls_question")]
//! #     pub struct Model {
//! #         #[sea_orm(primary_key)]
//! #         pub id: i64,
//! #         #[sea_orm(unique)]
//! #         pub question_text: String,
//! #         pub votes: i32,
//! #     }
//! #     impl ActiveModelBehavior for ActiveModel {}
//! # }
//! use kiln::db::prelude::*;
//! use kiln::db::{get_object_or_404, get_or_create};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kiln::Error> {
//! # let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
//! # let schema = kiln::db::sea_orm::Schema::new(db.get_database_backend());
//! # db.execute(&schema.create_table_from_entity(question::Entity)).await?;
//! let (question, created) = get_or_create(
//!     &db,
//!     question::ActiveModel { question_text: Set("What's new?".into()), ..Default::default() },
//!     question::ActiveModel { votes: Set(0), ..Default::default() },
//! )
//! .await?;
//! assert!(created);
//!
//! let found = get_object_or_404(question::Entity::find_by_id(question.id), &db).await?;
//! assert_eq!(found.question_text, "What's new?");
//! assert_eq!(question::Entity::find().count(&db).await?, 1);
//! assert!(question::Entity::find().exists(&db).await?);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::ops::RangeInclusive;

use sea_orm::sea_query::prelude::{Decimal, chrono};
use sea_orm::sea_query::{Alias, Expr, Func, Query, SelectStatement};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait,
    DbBackend, DbErr, EntityName, EntityTrait, IntoActiveModel, Iterable, PaginatorTrait,
    QueryFilter, QueryResult, QuerySelect, QueryTrait, Select, SelectorTrait, SqlErr,
    TransactionSession, TransactionTrait, TryGetable,
};

use super::migrations::BoxFuture;
use crate::Error;

/// The model an active model saves.
type ModelOf<A> = <<A as ActiveModelTrait>::Entity as EntityTrait>::Model;

/// How many rows of a query [`get_object_or_404`] and [`get_or_create`]
/// fetch: two are enough to tell "one" from "several".
const GET_LIMIT: u64 = 2;

/// The one row `query` selects, or a 404 naming the table.
///
/// Django's `get_object_or_404`: pass `Entity::find_by_id(id)` or any
/// filtered `Entity::find()`.
///
/// ```
/// # mod question {
/// #     use kiln::db::prelude::*;
/// #     #[sea_orm::model]
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "polls_question")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i64,
/// #         pub question_text: String,
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use kiln::db::prelude::*;
/// use kiln::db::{Db, get_object_or_404};
///
/// async fn detail(Db(db): Db, id: i64) -> Result<String, kiln::Error> {
///     let question = get_object_or_404(question::Entity::find_by_id(id), &db).await?;
///     Ok(question.question_text)
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kiln::Error> {
/// # let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
/// # let schema = kiln::db::sea_orm::Schema::new(db.get_database_backend());
/// # db.execute(&schema.create_table_from_entity(question::Entity)).await?;
/// let missing = get_object_or_404(question::Entity::find_by_id(7), &db).await.unwrap_err();
/// assert_eq!(missing.status(), 404);
/// assert_eq!(missing.public_message(), Some("No polls_question matches the given query."));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// A 404 [`Error`] when no row matches; a 500 when several rows match (a
/// lookup that should have been unique, as Django's
/// `MultipleObjectsReturned`) or the database fails. A `limit` on `query`
/// is replaced.
pub async fn get_object_or_404<E, C>(query: Select<E>, db: &C) -> Result<E::Model, Error>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let table = E::default().table_name();
    let mut rows = query
        .limit(GET_LIMIT)
        .all(db)
        .await
        .map_err(Error::internal)?;
    match (rows.pop(), rows.is_empty()) {
        (Some(row), true) => Ok(row),
        (Some(_), false) => Err(Error::internal(several_rows(table, "get_object_or_404"))),
        (None, _) => Err(Error::not_found(format!(
            "No {table} matches the given query."
        ))),
    }
}

fn several_rows(table: &str, function: &str) -> DbErr {
    DbErr::Custom(format!(
        "{function}: more than one row of `{table}` matches the lookup; \
         fix: look up by the primary key or by columns that are unique together"
    ))
}

/// Django's `Paginator`: splits a query into numbered pages.
///
/// Pages are numbered from 1. With `orphans(n)`, a last page of `n` rows or
/// fewer joins the page before it. An empty query still has page 1, with no
/// items, unless [`allow_empty_first_page(false)`](Self::allow_empty_first_page).
///
/// ```
/// # mod question {
/// #     use kiln::db::prelude::*;
/// #     #[sea_orm::model]
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "polls_question")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i64,
/// #         pub question_text: String,
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use kiln::db::prelude::*;
/// use kiln::db::Paginator;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kiln::Error> {
/// # let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
/// # let schema = kiln::db::sea_orm::Schema::new(db.get_database_backend());
/// # db.execute(&schema.create_table_from_entity(question::Entity)).await?;
/// for n in 1..=23 {
///     question::ActiveModel { question_text: Set(format!("Q{n}")), ..Default::default() }
///         .insert(&db)
///         .await?;
/// }
/// let paginator = Paginator::new(question::Entity::find().order_by_asc(question::Column::Id), 10)
///     .orphans(3);
/// let page = paginator.page(&db, 2).await?;
/// assert_eq!(page.num_pages, 2); // the 3 rows of a third page are orphans
/// assert_eq!(page.items.len(), 13);
/// assert_eq!((page.start_index(), page.end_index()), (11, 23));
/// assert!(!page.has_next());
///
/// // From a `?page=` query parameter: a bad one is a 404.
/// let error = paginator.page_from_param(&db, Some("3")).await.unwrap_err();
/// assert_eq!(error.status(), 404);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Paginator<Q> {
    query: Q,
    per_page: u64,
    orphans: u64,
    allow_empty_first_page: bool,
}

impl<Q> Paginator<Q> {
    /// Pages of `per_page` rows of `query` (at least 1). `query` should be
    /// ordered, or rows may move between pages; its `limit` and `offset`
    /// are replaced.
    pub fn new(query: Q, per_page: u64) -> Self {
        Self {
            query,
            per_page: per_page.max(1),
            orphans: 0,
            allow_empty_first_page: true,
        }
    }

    /// Lets the last page take up to `orphans` extra rows rather than leave
    /// them alone on a page of their own.
    #[must_use]
    pub fn orphans(mut self, orphans: u64) -> Self {
        self.orphans = orphans;
        self
    }

    /// Whether an empty query has a page 1 (the default) or no pages at all.
    #[must_use]
    pub fn allow_empty_first_page(mut self, allow: bool) -> Self {
        self.allow_empty_first_page = allow;
        self
    }

    /// Rows per page.
    #[must_use]
    pub fn per_page(&self) -> u64 {
        self.per_page
    }

    /// How many pages `count` rows make.
    ///
    /// ```
    /// let paginator = kiln::db::Paginator::new((), 10).orphans(2);
    /// assert_eq!(paginator.num_pages(0), 1);
    /// assert_eq!(paginator.num_pages(21), 2);
    /// assert_eq!(paginator.num_pages(23), 3);
    /// ```
    #[must_use]
    pub fn num_pages(&self, count: u64) -> u64 {
        if count == 0 {
            return u64::from(self.allow_empty_first_page);
        }
        let hits = count.saturating_sub(self.orphans).max(1);
        1 + (hits - 1) / self.per_page
    }

    /// Checks `number` against `num_pages` as Django's `validate_number`.
    fn validate(&self, number: u64, num_pages: u64) -> Result<(), Error> {
        if number < 1 {
            return Err(invalid_page(number, "That page number is less than 1"));
        }
        if number > num_pages && !(number == 1 && self.allow_empty_first_page) {
            return Err(invalid_page(number, "That page contains no results"));
        }
        Ok(())
    }

    /// The rows of page `number` (1-based).
    ///
    /// # Errors
    ///
    /// A 404 [`Error`] for page 0 or a page past the last; a 500 when the
    /// database fails.
    pub async fn page<'db, C>(
        &self,
        db: &'db C,
        number: u64,
    ) -> Result<Page<<Q::Selector as SelectorTrait>::Item>, Error>
    where
        C: ConnectionTrait,
        Q: PaginatorTrait<'db, C> + Clone + Send,
    {
        let pages = self.query.clone().paginate(db, self.per_page);
        let count = pages.num_items().await.map_err(Error::internal)?;
        let num_pages = self.num_pages(count);
        self.validate(number, num_pages)?;
        let bottom = (number - 1) * self.per_page;
        let top = if bottom + self.per_page + self.orphans >= count {
            count
        } else {
            bottom + self.per_page
        };
        let wanted = usize::try_from(top.saturating_sub(bottom)).unwrap_or(usize::MAX);
        // SeaORM pages have a fixed size; the last page with orphans spans
        // the next fixed page too, which starts where this one ends.
        let mut items = Vec::new();
        let mut fixed_page = number - 1;
        while items.len() < wanted {
            let rows = pages
                .fetch_page(fixed_page)
                .await
                .map_err(Error::internal)?;
            if rows.is_empty() {
                break;
            }
            items.extend(rows);
            fixed_page += 1;
        }
        items.truncate(wanted);
        Ok(Page {
            items,
            number,
            num_pages,
            count,
            per_page: self.per_page,
        })
    }

    /// The page a `?page=` query parameter asks for, as Django's `ListView`:
    /// missing or empty means page 1, `last` means the last page.
    ///
    /// # Errors
    ///
    /// A 404 [`Error`] for a value that is not a page number, or a page out
    /// of range; a 500 when the database fails.
    pub async fn page_from_param<'db, C>(
        &self,
        db: &'db C,
        param: Option<&str>,
    ) -> Result<Page<<Q::Selector as SelectorTrait>::Item>, Error>
    where
        C: ConnectionTrait,
        Q: PaginatorTrait<'db, C> + Clone + Send,
    {
        let number = match param.map(str::trim) {
            None | Some("") => 1,
            Some("last") => {
                let count = self
                    .query
                    .clone()
                    .paginate(db, self.per_page)
                    .num_items()
                    .await
                    .map_err(Error::internal)?;
                self.num_pages(count).max(1)
            }
            Some(text) => text.parse::<u64>().map_err(|_| {
                Error::not_found(format!(
                    "Invalid page ({text}): That page number is not an integer"
                ))
            })?,
        };
        self.page(db, number).await
    }
}

fn invalid_page(number: u64, message: &str) -> Error {
    Error::not_found(format!("Invalid page ({number}): {message}"))
}

/// One page of a [`Paginator`], as Django's `Page`.
///
/// It serializes (for templates) with its fields and the values of its
/// methods: `has_next`, `has_previous`, `has_other_pages`,
/// `next_page_number`, `previous_page_number` (null at the ends),
/// `start_index` and `end_index`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// This page's number, from 1.
    pub number: u64,
    /// How many pages there are.
    pub num_pages: u64,
    /// How many rows all pages hold.
    pub count: u64,
    /// Rows per page (the last page may hold up to `orphans` more).
    pub per_page: u64,
}

impl<T> Page<T> {
    /// Whether a page follows.
    #[must_use]
    pub fn has_next(&self) -> bool {
        self.number < self.num_pages
    }

    /// Whether a page precedes.
    #[must_use]
    pub fn has_previous(&self) -> bool {
        self.number > 1
    }

    /// Whether there is more than this page.
    #[must_use]
    pub fn has_other_pages(&self) -> bool {
        self.has_next() || self.has_previous()
    }

    /// The next page's number, if there is one.
    #[must_use]
    pub fn next_page_number(&self) -> Option<u64> {
        self.has_next().then(|| self.number + 1)
    }

    /// The previous page's number, if there is one.
    #[must_use]
    pub fn previous_page_number(&self) -> Option<u64> {
        self.has_previous().then(|| self.number - 1)
    }

    /// The 1-based index of this page's first row among all rows (0 when
    /// there are none).
    #[must_use]
    pub fn start_index(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.per_page * (self.number - 1) + 1
        }
    }

    /// The 1-based index of this page's last row among all rows.
    #[must_use]
    pub fn end_index(&self) -> u64 {
        if self.number == self.num_pages {
            self.count
        } else {
            self.number * self.per_page
        }
    }

    /// Every page number, `1..=num_pages`.
    #[must_use]
    pub fn page_range(&self) -> RangeInclusive<u64> {
        1..=self.num_pages
    }

    /// Page numbers around this page and at both ends, with gaps elided,
    /// as Django's `get_elided_page_range` (whose defaults are
    /// `on_each_side = 3`, `on_ends = 2`).
    ///
    /// ```
    /// use kiln::db::{Page, PageLink};
    ///
    /// let page = Page::<()> { items: vec![], number: 6, num_pages: 20, count: 200, per_page: 10 };
    /// let links: Vec<String> =
    ///     page.elided_page_range(1, 2).iter().map(ToString::to_string).collect();
    /// assert_eq!(links.join(" "), "1 2 … 5 6 7 … 19 20");
    /// ```
    #[must_use]
    pub fn elided_page_range(&self, on_each_side: u64, on_ends: u64) -> Vec<PageLink> {
        elided_page_range(self.number, self.num_pages, on_each_side, on_ends)
    }
}

/// One entry of [`Page::elided_page_range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageLink {
    /// A page number.
    Page(u64),
    /// Elided page numbers, shown as `…`.
    Ellipsis,
}

impl fmt::Display for PageLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Page(number) => write!(f, "{number}"),
            Self::Ellipsis => f.write_str("…"),
        }
    }
}

impl serde::Serialize for PageLink {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Page(number) => serializer.serialize_u64(*number),
            Self::Ellipsis => serializer.serialize_str("…"),
        }
    }
}

fn elided_page_range(
    number: u64,
    num_pages: u64,
    on_each_side: u64,
    on_ends: u64,
) -> Vec<PageLink> {
    let pages = |range: RangeInclusive<u64>| range.map(PageLink::Page);
    if num_pages <= (on_each_side + on_ends) * 2 {
        return pages(1..=num_pages).collect();
    }
    let mut links = Vec::new();
    if number > 1 + on_each_side + on_ends + 1 {
        links.extend(pages(1..=on_ends));
        links.push(PageLink::Ellipsis);
        links.extend(pages(number - on_each_side..=number));
    } else {
        links.extend(pages(1..=number));
    }
    if number + on_each_side + on_ends + 1 < num_pages {
        links.extend(pages(number + 1..=number + on_each_side));
        links.push(PageLink::Ellipsis);
        links.extend(pages(num_pages - on_ends + 1..=num_pages));
    } else {
        links.extend(pages(number + 1..=num_pages));
    }
    links
}

impl<T: serde::Serialize> serde::Serialize for Page<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut page = serializer.serialize_struct("Page", 12)?;
        page.serialize_field("items", &self.items)?;
        page.serialize_field("number", &self.number)?;
        page.serialize_field("num_pages", &self.num_pages)?;
        page.serialize_field("count", &self.count)?;
        page.serialize_field("per_page", &self.per_page)?;
        page.serialize_field("has_next", &self.has_next())?;
        page.serialize_field("has_previous", &self.has_previous())?;
        page.serialize_field("has_other_pages", &self.has_other_pages())?;
        page.serialize_field("next_page_number", &self.next_page_number())?;
        page.serialize_field("previous_page_number", &self.previous_page_number())?;
        page.serialize_field("start_index", &self.start_index())?;
        page.serialize_field("end_index", &self.end_index())?;
        page.end()
    }
}

/// The columns `filter` sets, as an `AND` of equalities (`IS NULL` for a
/// NULL value, as Django's `field=None`).
fn lookup<A: ActiveModelTrait>(filter: &A, function: &str) -> Result<Condition, DbErr> {
    let mut condition = Condition::all();
    let mut any = false;
    for column in <A::Entity as EntityTrait>::Column::iter() {
        if let ActiveValue::Set(value) | ActiveValue::Unchanged(value) = filter.get(column) {
            condition = condition.add(column.eq(value));
            any = true;
        }
    }
    if any {
        Ok(condition)
    } else {
        Err(DbErr::Custom(format!(
            "{function}: the lookup sets no column of `{}`; fix: set the columns that identify the row, e.g. `ActiveModel {{ name: Set(..), ..Default::default() }}`",
            A::Entity::default().table_name()
        )))
    }
}

/// The row matching `condition`, if exactly one does; locked `FOR UPDATE`
/// when `lock` (ignored by SQLite, whose writers lock the whole database).
async fn get_one<E, C>(
    condition: Condition,
    lock: bool,
    db: &C,
    function: &str,
) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut query = E::find().filter(condition).limit(GET_LIMIT);
    if lock {
        query = query.lock_exclusive();
    }
    let mut rows = query.all(db).await?;
    match (rows.pop(), rows.is_empty()) {
        (Some(_), false) => Err(several_rows(E::default().table_name(), function)),
        (row, _) => Ok(row),
    }
}

/// `target` with every column `source` sets and `target` does not.
fn fill_from<A: ActiveModelTrait>(mut target: A, source: &A) -> A {
    for column in <A::Entity as EntityTrait>::Column::iter() {
        if let ActiveValue::Set(value) | ActiveValue::Unchanged(value) = source.get(column)
            && target.get(column).is_not_set()
        {
            target.set(column, value);
        }
    }
    target
}

/// The row the columns set in `filter` identify, or a new row made of
/// `filter` and `defaults` (which win where both set a column); `true` when
/// created.
///
/// Race-safe as Django's: when another request inserts the same row between
/// the lookup and the insert, the unique constraint that makes the lookup
/// identify one row refuses the second insert, which runs in a savepoint of
/// its own, and the row the other request made is returned. Without such a
/// constraint on the filter's columns, two racing calls can both create.
///
/// ```
/// # mod tag {
/// #     use kiln::db::prelude::*;
/// #     #[sea_orm::model]
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "blog_tag")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i64,
/// #         #[sea_orm(unique)]
/// #         pub name: String,
/// #         pub uses: i32,
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use kiln::db::prelude::*;
/// use kiln::db::get_or_create;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kiln::Error> {
/// # let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
/// # let schema = kiln::db::sea_orm::Schema::new(db.get_database_backend());
/// # db.execute(&schema.create_table_from_entity(tag::Entity)).await?;
/// let rust = || tag::ActiveModel { name: Set("rust".into()), ..Default::default() };
/// let defaults = || tag::ActiveModel { uses: Set(1), ..Default::default() };
/// let (first, created) = get_or_create(&db, rust(), defaults()).await?;
/// assert!(created);
/// let (again, created) = get_or_create(&db, rust(), defaults()).await?;
/// assert!(!created);
/// assert_eq!(first, again);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`DbErr`] when `filter` sets no column, when several rows match, or
/// when the database fails (a constraint other than the race's unique one,
/// say).
pub async fn get_or_create<C, A>(
    db: &C,
    filter: A,
    defaults: A,
) -> Result<(ModelOf<A>, bool), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    ModelOf<A>: IntoActiveModel<A>,
{
    get_or_create_locking(db, filter, defaults, false).await
}

async fn get_or_create_locking<C, A>(
    db: &C,
    filter: A,
    defaults: A,
    lock: bool,
) -> Result<(ModelOf<A>, bool), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    ModelOf<A>: IntoActiveModel<A>,
{
    const FUNCTION: &str = "get_or_create";
    let condition = lookup(&filter, FUNCTION)?;
    if let Some(row) = get_one::<A::Entity, _>(condition.clone(), lock, db, FUNCTION).await? {
        return Ok((row, false));
    }
    let new = fill_from(defaults, &filter);
    // A savepoint when `db` is a transaction: on PostgreSQL a failed
    // statement would otherwise abort the caller's whole transaction.
    let savepoint = db.begin().await?;
    match new.insert(&savepoint).await {
        Ok(row) => {
            savepoint.commit().await?;
            Ok((row, true))
        }
        Err(error) => {
            savepoint.rollback().await?;
            if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
                && let Some(row) = get_one::<A::Entity, _>(condition, lock, db, FUNCTION).await?
            {
                return Ok((row, false));
            }
            Err(error)
        }
    }
}

/// Updates the row the columns set in `filter` identify with the columns
/// set in `defaults`, or creates it from both; `true` when created.
///
/// As Django's, the lookup locks the row (`SELECT … FOR UPDATE` on
/// PostgreSQL and MySQL) inside a transaction (a savepoint when `db` is one
/// already), and a racing insert is resolved as in [`get_or_create`].
///
/// ```
/// # mod tag {
/// #     use kiln::db::prelude::*;
/// #     #[sea_orm::model]
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "blog_tag")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i64,
/// #         #[sea_orm(unique)]
/// #         pub name: String,
/// #         pub uses: i32,
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use kiln::db::prelude::*;
/// use kiln::db::update_or_create;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kiln::Error> {
/// # let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
/// # let schema = kiln::db::sea_orm::Schema::new(db.get_database_backend());
/// # db.execute(&schema.create_table_from_entity(tag::Entity)).await?;
/// let rust = || tag::ActiveModel { name: Set("rust".into()), ..Default::default() };
/// let uses = |n| tag::ActiveModel { uses: Set(n), ..Default::default() };
/// let (tag, created) = update_or_create(&db, rust(), uses(1)).await?;
/// assert!(created);
/// let (tag, created) = update_or_create(&db, rust(), uses(2)).await?;
/// assert!(!created);
/// assert_eq!(tag.uses, 2);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`get_or_create`]; nothing is changed when it fails.
pub async fn update_or_create<C, A>(
    db: &C,
    filter: A,
    defaults: A,
) -> Result<(ModelOf<A>, bool), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
    A: ActiveModelTrait + ActiveModelBehavior + Send + 'static,
    ModelOf<A>: IntoActiveModel<A>,
{
    atomic(db, move |tx| {
        Box::pin(async move {
            let (row, created) = get_or_create_locking(tx, filter, defaults.clone(), true).await?;
            if created {
                return Ok((row, true));
            }
            let mut changed = row.clone().into_active_model();
            let mut any = false;
            for column in <A::Entity as EntityTrait>::Column::iter() {
                if let ActiveValue::Set(value) | ActiveValue::Unchanged(value) =
                    defaults.get(column)
                {
                    changed.set(column, value);
                    any = true;
                }
            }
            if !any {
                return Ok((row, false));
            }
            Ok((changed.update(tx).await?, false))
        })
    })
    .await
}

/// The most bind parameters one statement may carry on `backend`:
/// SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32766 since 3.32), and the
/// 16-bit parameter count of PostgreSQL's and MySQL's wire protocols.
///
/// ```
/// use kiln::db::{DbBackend, max_bind_params};
///
/// assert_eq!(max_bind_params(DbBackend::Sqlite), 32_766);
/// assert_eq!(max_bind_params(DbBackend::Postgres), 65_535);
/// ```
#[must_use]
pub fn max_bind_params(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Sqlite => 32_766,
        _ => 65_535,
    }
}

/// Inserts `models` in as few statements as the backend's bind-parameter
/// limit allows, all or none; returns how many rows were inserted.
///
/// Django's `bulk_create`. With `batch_size: None`, each statement holds as
/// many rows as fit [`max_bind_params`] given the columns the models set; a
/// larger `Some(n)` is lowered to that. A column set on any model is
/// written for every model: NULL where one leaves it `NotSet`. The batches
/// run in one transaction (a savepoint when `db` is one already).
///
/// ```
/// # mod tag {
/// #     use kiln::db::prelude::*;
/// #     #[sea_orm::model]
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "blog_tag")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i64,
/// #         #[sea_orm(unique)]
/// #         pub name: String,
/// #         pub uses: i32,
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use kiln::db::prelude::*;
/// use kiln::db::bulk_create;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kiln::Error> {
/// # let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
/// # let schema = kiln::db::sea_orm::Schema::new(db.get_database_backend());
/// # db.execute(&schema.create_table_from_entity(tag::Entity)).await?;
/// let tags = (0..1000).map(|n| tag::ActiveModel {
///     name: Set(format!("tag{n}")),
///     uses: Set(0),
///     ..Default::default()
/// });
/// assert_eq!(bulk_create(&db, tags, Some(300)).await?, 1000);
/// assert_eq!(tag::Entity::find().count(&db).await?, 1000);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`DbErr`] from the first statement that fails; no row is inserted then.
pub async fn bulk_create<C, A, I>(
    db: &C,
    models: I,
    batch_size: Option<usize>,
) -> Result<u64, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
    A: ActiveModelTrait + Send,
    I: IntoIterator<Item = A>,
{
    let models: Vec<A> = models.into_iter().collect();
    if models.is_empty() {
        return Ok(0);
    }
    let columns = <A::Entity as EntityTrait>::Column::iter()
        .filter(|&column| models.iter().any(|model| !model.get(column).is_not_set()))
        .count()
        .max(1);
    let fits = (max_bind_params(db.get_database_backend()) / columns).max(1);
    let batch = batch_size.map_or(fits, |size| size.clamp(1, fits));
    let tx = db.begin().await?;
    let mut inserted = 0;
    let mut models = models.into_iter();
    loop {
        let chunk: Vec<A> = models.by_ref().take(batch).collect();
        if chunk.is_empty() {
            break;
        }
        inserted += A::Entity::insert_many(chunk)
            .exec_without_returning(&tx)
            .await?;
    }
    tx.commit().await?;
    Ok(inserted)
}

/// Runs `body` in a transaction, as Django's `transaction.atomic`: commits
/// when it returns `Ok`, rolls back when it returns `Err`.
///
/// Nestable: on a [`DatabaseTransaction`](sea_orm::DatabaseTransaction)
/// (the `tx` an outer `atomic` hands its body) it opens a savepoint, which
/// an error rolls back alone while the outer transaction goes on. Errors
/// are the body's own type (any `E: From<DbErr>`, such as [`kiln::Error`](Error)).
/// Inside the body, run every query on `tx`: the pool would hand out another
/// connection, outside the transaction.
///
/// ```
/// # mod tag {
/// #     use kiln::db::prelude::*;
/// #     #[sea_orm::model]
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "blog_tag")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i64,
/// #         #[sea_orm(unique)]
/// #         pub name: String,
/// #         pub uses: i32,
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use kiln::db::prelude::*;
/// use kiln::db::atomic;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kiln::Error> {
/// # let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
/// # let schema = kiln::db::sea_orm::Schema::new(db.get_database_backend());
/// # db.execute(&schema.create_table_from_entity(tag::Entity)).await?;
/// let tag = |name: &str| tag::ActiveModel { name: Set(name.into()), uses: Set(0), ..Default::default() };
/// atomic(&db, |tx| Box::pin(async move {
///     tag("kept").insert(tx).await?;
///     let inner: Result<(), kiln::Error> = atomic(tx, |tx| Box::pin(async move {
///         tag("rolled back").insert(tx).await?;
///         Err(kiln::Error::bad_request("changed my mind"))
///     }))
///     .await;
///     assert!(inner.is_err());
///     Ok::<_, kiln::Error>(())
/// }))
/// .await?;
/// let names: Vec<String> = tag::Entity::find().all(&db).await?.into_iter().map(|t| t.name).collect();
/// assert_eq!(names, ["kept"]);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// The body's error, after the rollback; or the [`DbErr`] of `BEGIN` /
/// `COMMIT` converted into `E`.
pub async fn atomic<C, F, T, E>(db: &C, body: F) -> Result<T, E>
where
    C: TransactionTrait,
    F: for<'c> FnOnce(&'c C::Transaction) -> BoxFuture<'c, Result<T, E>> + Send,
    T: Send,
    E: From<DbErr> + Send,
{
    let tx = db.begin().await?;
    match body(&tx).await {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            // The body's error says what went wrong; a failed rollback
            // (a lost connection, usually) is logged rather than returned
            // in its place.
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rolling back an atomic block failed");
            }
            Err(error)
        }
    }
}

/// Aggregates of one column over a query, as Django's `aggregate(Sum(..))`.
///
/// `None` when the query selects no row (or only NULLs). The query's order,
/// limit and offset are honoured: the aggregate runs over it as a
/// subquery. The result converts to the asked type whatever the backend
/// returns (PostgreSQL's `SUM(bigint)` is a `numeric`, MySQL's a `DECIMAL`):
/// ask `i64` for a sum of integers, `f64` or `Decimal` for an average.
///
/// ```
/// # mod choice {
/// #     use kiln::db::prelude::*;
/// #     #[sea_orm::model]
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "polls_choice")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i64,
/// #         pub votes: i32,
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use kiln::db::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kiln::Error> {
/// # let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
/// # let schema = kiln::db::sea_orm::Schema::new(db.get_database_backend());
/// # db.execute(&schema.create_table_from_entity(choice::Entity)).await?;
/// for votes in [3, 4, 8] {
///     choice::ActiveModel { votes: Set(votes), ..Default::default() }.insert(&db).await?;
/// }
/// let total: Option<i64> = choice::Entity::find().sum(choice::Column::Votes, &db).await?;
/// assert_eq!(total, Some(15));
/// let average: Option<f64> = choice::Entity::find().avg(choice::Column::Votes, &db).await?;
/// assert_eq!(average, Some(5.0));
/// let most: Option<i32> = choice::Entity::find().max(choice::Column::Votes, &db).await?;
/// assert_eq!(most, Some(8));
/// let none: Option<i32> =
///     choice::Entity::find().filter(choice::Column::Votes.gt(100)).min(choice::Column::Votes, &db).await?;
/// assert_eq!(none, None);
/// # Ok(())
/// # }
/// ```
pub trait AggregateExt: QuerySelect + QueryTrait<QueryStatement = SelectStatement> + Send {
    /// `SUM(column)`.
    ///
    /// # Errors
    ///
    /// [`DbErr`] when the query fails or its result does not fit `T`.
    fn sum<T, Col, C>(
        self,
        column: Col,
        db: &C,
    ) -> impl Future<Output = Result<Option<T>, DbErr>> + Send
    where
        T: AggregateValue,
        Col: ColumnTrait,
        C: ConnectionTrait,
    {
        aggregate(self, Func::sum, column, db)
    }

    /// `AVG(column)`.
    ///
    /// # Errors
    ///
    /// As [`sum`](Self::sum).
    fn avg<T, Col, C>(
        self,
        column: Col,
        db: &C,
    ) -> impl Future<Output = Result<Option<T>, DbErr>> + Send
    where
        T: AggregateValue,
        Col: ColumnTrait,
        C: ConnectionTrait,
    {
        aggregate(self, Func::avg, column, db)
    }

    /// `MIN(column)`.
    ///
    /// # Errors
    ///
    /// As [`sum`](Self::sum).
    fn min<T, Col, C>(
        self,
        column: Col,
        db: &C,
    ) -> impl Future<Output = Result<Option<T>, DbErr>> + Send
    where
        T: AggregateValue,
        Col: ColumnTrait,
        C: ConnectionTrait,
    {
        aggregate(self, Func::min, column, db)
    }

    /// `MAX(column)`.
    ///
    /// # Errors
    ///
    /// As [`sum`](Self::sum).
    fn max<T, Col, C>(
        self,
        column: Col,
        db: &C,
    ) -> impl Future<Output = Result<Option<T>, DbErr>> + Send
    where
        T: AggregateValue,
        Col: ColumnTrait,
        C: ConnectionTrait,
    {
        aggregate(self, Func::max, column, db)
    }
}

impl<E: EntityTrait> AggregateExt for Select<E> {}

async fn aggregate<Q, T, Col, C>(
    query: Q,
    function: fn(Expr) -> sea_orm::sea_query::FunctionCall,
    column: Col,
    db: &C,
) -> Result<Option<T>, DbErr>
where
    Q: QuerySelect + QueryTrait<QueryStatement = SelectStatement>,
    T: AggregateValue,
    Col: ColumnTrait,
    C: ConnectionTrait,
{
    let rows = query
        .select_only()
        .column_as(column, "kiln_value")
        .into_query();
    let statement = Query::select()
        .expr_as(
            function(Expr::col(Alias::new("kiln_value"))),
            Alias::new("kiln_aggregate"),
        )
        .from_subquery(rows, Alias::new("kiln_rows"))
        .to_owned();
    match db.query_one(&statement).await? {
        Some(row) => T::from_aggregate(&row),
        None => Ok(None),
    }
}

/// A type an aggregate can return: numbers convert from whatever numeric
/// type the backend answers with; dates, times and strings are read as
/// they are (for `min` and `max`).
pub trait AggregateValue: TryGetable + Sized + Send {
    /// Converts an integer result.
    fn from_i64(_value: i64) -> Option<Self> {
        None
    }

    /// Converts a decimal result.
    fn from_decimal(_value: Decimal) -> Option<Self> {
        None
    }

    /// Converts a floating-point result.
    fn from_f64(_value: f64) -> Option<Self> {
        None
    }

    /// Reads the first column of `row`, trying `Self` and then each
    /// numeric type a backend may answer with.
    ///
    /// # Errors
    ///
    /// The error of reading `Self` when no conversion applies.
    fn from_aggregate(row: &QueryResult) -> Result<Option<Self>, DbErr> {
        let error = match row.try_get_by_index::<Option<Self>>(0) {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if let Ok(value) = row.try_get_by_index::<Option<i64>>(0) {
            match value.map(Self::from_i64) {
                None => return Ok(None),
                Some(Some(value)) => return Ok(Some(value)),
                Some(None) => {}
            }
        }
        if let Ok(value) = row.try_get_by_index::<Option<Decimal>>(0) {
            match value.map(Self::from_decimal) {
                None => return Ok(None),
                Some(Some(value)) => return Ok(Some(value)),
                Some(None) => {}
            }
        }
        let float = row.try_get_by_index::<Option<f64>>(0).or_else(|_| {
            row.try_get_by_index::<Option<f32>>(0)
                .map(|v| v.map(f64::from))
        });
        if let Ok(value) = float {
            match value.map(Self::from_f64) {
                None => return Ok(None),
                Some(Some(value)) => return Ok(Some(value)),
                Some(None) => {}
            }
        }
        Err(error)
    }
}

/// An `f64` that holds an integer, as that integer.
fn integral(value: f64) -> Option<i128> {
    // i64::MAX as f64 rounds up to 2^63; the bounds keep the cast exact.
    let in_range = (-9.223_372_036_854_776e18..=1.844_674_407_370_955_2e19).contains(&value);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "checked above: integral and within the range of i128"
    )]
    (value.fract() == 0.0 && in_range).then_some(value as i128)
}

macro_rules! aggregate_integer {
    ($($type:ty),*) => {$(
        impl AggregateValue for $type {
            fn from_i64(value: i64) -> Option<Self> {
                Self::try_from(value).ok()
            }
            fn from_decimal(value: Decimal) -> Option<Self> {
                value.fract().is_zero().then(|| Self::try_from(value).ok()).flatten()
            }
            fn from_f64(value: f64) -> Option<Self> {
                integral(value).and_then(|value| Self::try_from(value).ok())
            }
        }
    )*};
}

aggregate_integer!(i8, i16, i32, i64, u8, u16, u32, u64);

impl AggregateValue for f64 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "an aggregate asked for as f64 accepts its rounding"
    )]
    fn from_i64(value: i64) -> Option<Self> {
        Some(value as f64)
    }
    fn from_decimal(value: Decimal) -> Option<Self> {
        Self::try_from(value).ok()
    }
    fn from_f64(value: f64) -> Option<Self> {
        Some(value)
    }
}

impl AggregateValue for f32 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "an aggregate asked for as f32 accepts its rounding"
    )]
    fn from_i64(value: i64) -> Option<Self> {
        Some(value as f32)
    }
    fn from_decimal(value: Decimal) -> Option<Self> {
        Self::try_from(value).ok()
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "an aggregate asked for as f32 accepts its rounding"
    )]
    fn from_f64(value: f64) -> Option<Self> {
        Some(value as f32)
    }
}

impl AggregateValue for Decimal {
    fn from_i64(value: i64) -> Option<Self> {
        Some(Self::from(value))
    }
    fn from_decimal(value: Decimal) -> Option<Self> {
        Some(value)
    }
    fn from_f64(value: f64) -> Option<Self> {
        Self::try_from(value).ok()
    }
}

impl AggregateValue for String {}
impl AggregateValue for chrono::NaiveDate {}
impl AggregateValue for chrono::NaiveTime {}
impl AggregateValue for chrono::NaiveDateTime {}
impl AggregateValue for chrono::DateTime<chrono::Utc> {}
impl AggregateValue for chrono::DateTime<chrono::FixedOffset> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(number: u64, num_pages: u64, on_each_side: u64, on_ends: u64) -> String {
        elided_page_range(number, num_pages, on_each_side, on_ends)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn elided_range_matches_djangos() {
        // Django 5: list(Paginator(range(200), 10).get_elided_page_range(n, ...))
        assert_eq!(links(1, 20, 3, 2), "1 2 3 4 … 19 20");
        assert_eq!(links(10, 20, 3, 2), "1 2 … 7 8 9 10 11 12 13 … 19 20");
        assert_eq!(links(20, 20, 3, 2), "1 2 … 17 18 19 20");
        assert_eq!(links(6, 20, 1, 2), "1 2 … 5 6 7 … 19 20");
        assert_eq!(links(3, 10, 0, 0), "… 3 …");
        assert_eq!(links(2, 5, 3, 2), "1 2 3 4 5");
        assert_eq!(links(1, 0, 3, 2), "");
    }

    #[test]
    fn num_pages_follows_orphans_and_empty_first_page() {
        let paginator = Paginator::new((), 10);
        assert_eq!(paginator.num_pages(0), 1);
        assert_eq!(paginator.num_pages(10), 1);
        assert_eq!(paginator.num_pages(11), 2);
        let paginator = paginator.orphans(3).allow_empty_first_page(false);
        assert_eq!(paginator.num_pages(0), 0);
        assert_eq!(paginator.num_pages(13), 1);
        assert_eq!(paginator.num_pages(14), 2);
        assert!(paginator.validate(1, 0).is_err());
        assert!(Paginator::new((), 10).validate(1, 0).is_ok());
    }

    #[test]
    fn page_indexes_are_one_based() {
        let page = Page::<()> {
            items: Vec::new(),
            number: 3,
            num_pages: 3,
            count: 25,
            per_page: 10,
        };
        assert_eq!((page.start_index(), page.end_index()), (21, 25));
        assert_eq!(page.previous_page_number(), Some(2));
        assert_eq!(page.next_page_number(), None);
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(json["has_previous"], true);
        assert_eq!(json["next_page_number"], serde_json::Value::Null);
    }

    #[test]
    fn integral_floats_convert_exactly() {
        assert_eq!(integral(15.0), Some(15));
        assert_eq!(integral(15.5), None);
        assert_eq!(<i32 as AggregateValue>::from_f64(1e12), None);
        assert_eq!(<u64 as AggregateValue>::from_i64(-1), None);
    }
}
