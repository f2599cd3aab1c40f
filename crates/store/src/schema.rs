//! The live schema, normalised so SQLite and PostgreSQL can be compared.

use crate::{Pool, Result, Store};
use sqlx::Row;

/// One column of one table, with its type reduced to a backend-neutral family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnInfo {
    pub table: String,
    pub column: String,
    pub family: &'static str,
    pub not_null: bool,
}

/// Maps a declared type to its family: int, text, bytes, bool, or `other:<type>`.
pub fn normalise_type(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" | "int8" | "int" | "smallint" => "int",
        "text" | "character varying" | "varchar" => "text",
        "blob" | "bytea" => "bytes",
        "boolean" | "bool" => "bool",
        _ => "other",
    }
}

impl Store {
    /// Every application table's columns (migration bookkeeping excluded), sorted.
    pub async fn schema(&self) -> Result<Vec<ColumnInfo>> {
        let mut out = Vec::new();
        match &self.pool {
            Pool::Sqlite(p) => {
                for schema in ["main", "audit", "tree"] {
                    let tables = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' \
                         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'"
                    )))
                    .fetch_all(p)
                    .await?;
                    for t in tables {
                        let table: String = t.try_get("name")?;
                        let cols = sqlx::query(
                            "SELECT name, type, \"notnull\" AS nn FROM pragma_table_info($1, $2)",
                        )
                        .bind(&table)
                        .bind(schema)
                        .fetch_all(p)
                        .await?;
                        for c in cols {
                            let declared: String = c.try_get("type")?;
                            let nn: i64 = c.try_get("nn")?;
                            out.push(ColumnInfo {
                                table: table.clone(),
                                column: c.try_get("name")?,
                                family: normalise_type(&declared),
                                not_null: nn != 0,
                            });
                        }
                    }
                }
            }
            Pool::Postgres(p) => {
                let cols = sqlx::query(
                    "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty, is_nullable::text AS n \
                     FROM information_schema.columns WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
                )
                .fetch_all(p)
                .await?;
                for c in cols {
                    let declared: String = c.try_get("ty")?;
                    let nullable: String = c.try_get("n")?;
                    out.push(ColumnInfo {
                        table: c.try_get("t")?,
                        column: c.try_get("c")?,
                        family: normalise_type(&declared),
                        not_null: nullable == "NO",
                    });
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
