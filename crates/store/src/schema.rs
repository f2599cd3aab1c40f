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
            Pool::Sqlite(pool) => {
                // One connection: its read of `sqlite_master` brings its schema up to date
                // for the pragmas (see `sqlite_constraints`).
                let mut conn = pool.acquire().await?;
                let p = &mut *conn;
                for schema in ["main", "audit", "tree"] {
                    let tables = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' \
                         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'"
                    )))
                    .fetch_all(&mut *p)
                    .await?;
                    for t in tables {
                        let table: String = t.try_get("name")?;
                        let cols = sqlx::query(
                            "SELECT name, type, \"notnull\" AS nn FROM pragma_table_info($1, $2)",
                        )
                        .bind(&table)
                        .bind(schema)
                        .fetch_all(&mut *p)
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

/// Everything about a schema's tables that is not a column, each as one backend-neutral line:
/// `index t(a,b)`, `unique t(a)` (`… where` for a partial index), `fk t(a) -> u(b)`, `guard t
/// before update` (a trigger that refuses a change). A primary key is a `unique` key like any
/// other: which key is primary is a storage choice (SQLite keeps `employments` clustered by
/// employer, migration 0019, PostgreSQL by id), what is unique is not. Index and constraint
/// names are left out: the backends name their automatic ones differently. A trigger is known
/// by its table, timing and event; PostgreSQL's TRUNCATE triggers, which SQLite has no
/// statement for, are left out.
pub type Constraint = String;

fn index_line(table: &str, cols: &str, unique: bool, partial: bool) -> Constraint {
    let kind = if unique { "unique" } else { "index" };
    let filter = if partial { " where" } else { "" };
    format!("{kind} {table}({cols}){filter}")
}

/// The timing and event of a SQLite trigger, from its SQL.
fn sqlite_trigger(sql: &str) -> Option<(String, String)> {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let t = words
        .iter()
        .position(|w| w == "before" || w == "after" || w == "instead")?;
    let timing = words[t].clone();
    let event = words
        .get(t + 1..)?
        .iter()
        .find(|w| ["insert", "update", "delete"].contains(&w.as_str()))?
        .clone();
    Some((timing, event))
}

impl Store {
    /// The schema's keys, indexes, foreign keys and guarding triggers ([`Constraint`]), sorted
    /// and each once.
    pub async fn constraints(&self) -> Result<Vec<Constraint>> {
        let mut out = match &self.pool {
            Pool::Sqlite(p) => sqlite_constraints(p).await?,
            Pool::Postgres(p) => pg_constraints(p).await?,
        };
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// On one connection: it reads `sqlite_master` of each schema first, which brings its view of
/// that schema up to date for the pragmas that follow (a pooled connection opened before the
/// migrations ran otherwise answers `pragma_index_list` from the schema it loaded then).
async fn sqlite_constraints(pool: &sqlx::SqlitePool) -> Result<Vec<Constraint>> {
    let mut conn = pool.acquire().await?;
    let p = &mut *conn;
    let mut out = Vec::new();
    for schema in ["main", "audit", "tree"] {
        let objects = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT type, name, tbl_name, sql FROM {schema}.sqlite_master \
             WHERE type IN ('table', 'trigger') AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE '_sqlx%'"
        )))
        .fetch_all(&mut *p)
        .await?;
        for o in objects {
            let kind: String = o.try_get("type")?;
            let table: String = o.try_get("tbl_name")?;
            if kind == "trigger" {
                let sql: String = o.try_get("sql")?;
                if let Some((timing, event)) = sqlite_trigger(&sql) {
                    out.push(format!("guard {table} {timing} {event}"));
                }
                continue;
            }
            let pk =
                sqlx::query("SELECT name FROM pragma_table_info($1, $2) WHERE pk > 0 ORDER BY pk")
                    .bind(&table)
                    .bind(schema)
                    .fetch_all(&mut *p)
                    .await?;
            let pk: Vec<String> = pk
                .iter()
                .map(|r| r.try_get("name"))
                .collect::<std::result::Result<_, _>>()?;
            if !pk.is_empty() {
                out.push(format!("unique {table}({})", pk.join(",")));
            }
            let indexes = sqlx::query(
                "SELECT name, \"unique\" AS u, origin, partial FROM pragma_index_list($1, $2)",
            )
            .bind(&table)
            .bind(schema)
            .fetch_all(&mut *p)
            .await?;
            for i in indexes {
                let origin: String = i.try_get("origin")?;
                if origin == "pk" {
                    continue;
                }
                let name: String = i.try_get("name")?;
                let cols = sqlx::query("SELECT name FROM pragma_index_info($1, $2) ORDER BY seqno")
                    .bind(&name)
                    .bind(schema)
                    .fetch_all(&mut *p)
                    .await?;
                let cols: Vec<String> = cols
                    .iter()
                    .map(|r| {
                        r.try_get::<Option<String>, _>("name")
                            .map(|n| n.unwrap_or_else(|| "<expr>".into()))
                    })
                    .collect::<std::result::Result<_, _>>()?;
                let unique: i64 = i.try_get("u")?;
                let partial: i64 = i.try_get("partial")?;
                out.push(index_line(
                    &table,
                    &cols.join(","),
                    unique != 0,
                    partial != 0,
                ));
            }
            let fks = sqlx::query(
                "SELECT id, \"table\" AS ref, \"from\" AS col, \"to\" AS refcol \
                 FROM pragma_foreign_key_list($1, $2) ORDER BY id, seq",
            )
            .bind(&table)
            .bind(schema)
            .fetch_all(&mut *p)
            .await?;
            let mut by_id: std::collections::BTreeMap<i64, (String, Vec<String>, Vec<String>)> =
                Default::default();
            for f in fks {
                let e = by_id.entry(f.try_get("id")?).or_default();
                e.0 = f.try_get("ref")?;
                e.1.push(f.try_get("col")?);
                e.2.push(
                    f.try_get::<Option<String>, _>("refcol")?
                        .unwrap_or_default(),
                );
            }
            for (_, (r, cols, refcols)) in by_id {
                out.push(format!(
                    "fk {table}({}) -> {r}({})",
                    cols.join(","),
                    refcols.join(",")
                ));
            }
        }
    }
    Ok(out)
}

async fn pg_constraints(p: &sqlx::PgPool) -> Result<Vec<Constraint>> {
    let mut out = Vec::new();
    let cols_of = |rel: &str, keys: &str| {
        format!(
            "array_to_string(ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(n, ord) \
             JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.n ORDER BY k.ord), ',')"
        )
    };
    let indexes = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.relname::text AS tbl, ix.indisunique AS uniq, \
         ix.indpred IS NOT NULL AS partial, {} AS cols \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND t.relname NOT LIKE '\\_sqlx%'",
        cols_of("t.oid", "ix.indkey::int2[]")
    )))
    .fetch_all(p)
    .await?;
    for i in indexes {
        let table: String = i.try_get("tbl")?;
        let cols: String = i.try_get("cols")?;
        out.push(index_line(
            &table,
            &cols,
            i.try_get("uniq")?,
            i.try_get("partial")?,
        ));
    }
    let fks = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.relname::text AS tbl, r.relname::text AS ref, {} AS cols, {} AS refcols \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
        cols_of("c.conrelid", "c.conkey"),
        cols_of("c.confrelid", "c.confkey")
    )))
    .fetch_all(p)
    .await?;
    for f in fks {
        let table: String = f.try_get("tbl")?;
        let r: String = f.try_get("ref")?;
        let cols: String = f.try_get("cols")?;
        let refcols: String = f.try_get("refcols")?;
        out.push(format!("fk {table}({cols}) -> {r}({refcols})"));
    }
    let triggers = sqlx::query(
        "SELECT c.relname::text AS tbl, t.tgtype::int4 AS ty FROM pg_trigger t \
         JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT t.tgisinternal AND n.nspname = current_schema()",
    )
    .fetch_all(p)
    .await?;
    for t in triggers {
        let table: String = t.try_get("tbl")?;
        let ty: i32 = t.try_get("ty")?;
        // pg_trigger.tgtype: 2 BEFORE, 64 INSTEAD OF (else AFTER); 4 INSERT, 8 DELETE,
        // 16 UPDATE, 32 TRUNCATE.
        let timing = match (ty & 2 != 0, ty & 64 != 0) {
            (true, _) => "before",
            (_, true) => "instead",
            _ => "after",
        };
        for (bit, event) in [(4, "insert"), (8, "delete"), (16, "update")] {
            if ty & bit != 0 {
                out.push(format!("guard {table} {timing} {event}"));
            }
        }
    }
    Ok(out)
}
