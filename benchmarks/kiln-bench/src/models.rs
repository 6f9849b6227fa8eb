//! TechEmpower's two tables as Kiln models. Their schema is TechEmpower's,
//! created and filled by `benchmarks/db/setup` (shared with every target),
//! so the app has no migrations: like Django's `managed = False`.

pub(crate) mod world {
    use kiln::db::prelude::*;
    use serde::{Deserialize, Serialize};

    /// Rows in the table; ids are `1..=ROWS`, random numbers too.
    pub(crate) const ROWS: i32 = 10_000;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "world")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) id: i32,
        #[serde(rename = "randomNumber")]
        pub(crate) randomnumber: i32,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod fortune {
    use kiln::db::prelude::*;
    use serde::Serialize;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
    #[sea_orm(table_name = "fortune")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) id: i32,
        #[sea_orm(column_type = "String(StringLen::N(2048))")]
        pub(crate) message: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
