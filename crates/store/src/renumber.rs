//! Renumbering persons (migration 0025): a database made before person row ids were keyed
//! numbers them by their serial, which is the immatriculation number minus 100 000 000. The
//! kernel moves each such person to its keyed id (`Kernel::renumber_persons`); this module is
//! the SQL of it. Serial ids are below [`PERSON_ID_BASE`] and keyed ids at or above it, so
//! every step finds what is left to move by the id alone, and a renumbering cut short by a
//! crash goes on where it stopped.

use crate::blocks::LineBlock;
use crate::{PERSON_COLUMNS, PersonRow, Result, Store, with_pool};
use domain::PersonField;
use sqlx::{QueryBuilder, Row};

/// Keyed person ids are at or above this (`vault::PERSON_ID_BASE`, 2^52); serial ids below.
pub const PERSON_ID_BASE: i64 = 1 << 52;

/// Every column that holds a person's row id as a foreign key. A test checks it against the
/// schema, so a new one cannot be forgotten.
pub const PERSON_REFERENCES: &[(&str, &str)] = &[
    ("principals", "person_id"),
    ("cases", "person_id"),
    ("enrolments", "person_id"),
    ("rib_changes", "person_id"),
    ("phone_changes", "person_id"),
    ("preetabli_lines", "person_id"),
    ("employments", "person_id"),
    ("employment_claims", "person_id"),
];

/// The `counters` row that marks a database whose persons are numbered by serial (set by
/// migration 0025 when it found any, removed when they are all renumbered).
const SERIAL_MARK: &str = "person_ids_serial";

/// A préétabli's persons as stored: (id, its sealed employees, its person list).
pub type PreetabliPersons = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// A person as stored, with its last update's time (kept across the move).
#[derive(Debug, Clone)]
pub struct StoredPerson {
    pub row: PersonRow,
    pub updated_at: i64,
}

impl Store {
    /// Whether this database still numbers persons by serial (migration 0025).
    pub async fn person_ids_serial(&self) -> Result<bool> {
        Ok(with_pool!(self, |p| sqlx::query(
            "SELECT 1 FROM counters WHERE name = $1"
        )
        .bind(SERIAL_MARK)
        .fetch_optional(p)
        .await?
        .is_some()))
    }

    /// Marks the database as numbering persons by serial: what a database made before
    /// migration 0025 does (tests make one so).
    pub async fn mark_person_ids_serial(&self) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO counters (name, next_value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING"
        )
        .bind(SERIAL_MARK)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Every person keyed now: new persons get keyed ids from here on.
    pub async fn end_serial_person_ids(&self) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "DELETE FROM counters WHERE name = $1"
        )
        .bind(SERIAL_MARK)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// How many persons still have a serial id.
    pub async fn count_serial_persons(&self) -> Result<i64> {
        Ok(with_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM persons WHERE id < $1"
        )
        .bind(PERSON_ID_BASE)
        .fetch_one(p)
        .await?))
    }

    /// Up to `limit` persons that still have a serial id, in id order.
    pub async fn serial_persons(&self, limit: i64) -> Result<Vec<StoredPerson>> {
        with_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id, immatriculation_bidx, cin_bidx, {PERSON_COLUMNS}, created_at, updated_at \
                 FROM persons WHERE id < $1 ORDER BY id LIMIT $2"
            )))
            .bind(PERSON_ID_BASE)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredPerson {
                        row: PersonRow {
                            id: r.try_get("id")?,
                            immatriculation_bidx: r.try_get("immatriculation_bidx")?,
                            cin_bidx: r.try_get("cin_bidx")?,
                            cipher: crate::PersonCipher::from_row(r)?,
                            created_at: r.try_get("created_at")?,
                        },
                        updated_at: r.try_get("updated_at")?,
                    })
                })
                .collect()
        })
    }

    /// Moves persons to new row ids in one transaction: `moves` pairs a person's old id with
    /// its row under the new id (ciphertexts sealed for it). The new rows are written first,
    /// under placeholder blind indexes (the old rows hold the real ones until they go), then
    /// every reference moves ([`PERSON_REFERENCES`]), then the old rows go and the new ones
    /// take their blind indexes: no foreign key is ever left dangling, on either backend.
    pub async fn move_persons(&self, moves: &[(i64, StoredPerson)]) -> Result<()> {
        if moves.is_empty() {
            return Ok(());
        }
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for chunk in moves.chunks(crate::BATCH / 2) {
                let mut q = QueryBuilder::new(format!(
                    "INSERT INTO persons (id, immatriculation_bidx, cin_bidx, {PERSON_COLUMNS}, created_at, updated_at) "
                ));
                q.push_values(chunk, |mut b, (_, n)| {
                    // A placeholder one byte longer than any blind index: unique, and never
                    // equal to one.
                    let mut imm = n.row.immatriculation_bidx.clone();
                    imm.push(0xff);
                    let mut cin = n.row.cin_bidx.clone();
                    cin.push(0xff);
                    b.push_bind(n.row.id).push_bind(imm).push_bind(cin);
                    for f in PersonField::ALL {
                        b.push_bind(n.row.cipher.0[f.index()].clone());
                    }
                    b.push_bind(n.row.created_at).push_bind(n.updated_at);
                });
                q.build().execute(&mut *tx).await?;
                for (table, column) in PERSON_REFERENCES {
                    let mut q =
                        QueryBuilder::new(format!("UPDATE {table} SET {column} = CASE {column}"));
                    for (old, n) in chunk {
                        q.push(" WHEN ")
                            .push_bind(*old)
                            .push(" THEN ")
                            .push_bind(n.row.id);
                    }
                    q.push(format!(" END WHERE {column} IN ("));
                    let mut sep = q.separated(", ");
                    for (old, _) in chunk {
                        sep.push_bind(*old);
                    }
                    q.push(")");
                    q.build().execute(&mut *tx).await?;
                }
                let mut q = QueryBuilder::new("DELETE FROM persons WHERE id IN (");
                let mut sep = q.separated(", ");
                for (old, _) in chunk {
                    sep.push_bind(*old);
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
                for (_, n) in chunk {
                    sqlx::query(
                        "UPDATE persons SET immatriculation_bidx = $1, cin_bidx = $2 WHERE id = $3",
                    )
                    .bind(n.row.immatriculation_bidx.as_slice())
                    .bind(n.row.cin_bidx.as_slice())
                    .bind(n.row.id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Up to `limit` préétablis after `after` (by id) that hold persons' ids: in their sealed
    /// employees (migration 0015) or their person list ([`crate::PreetabliRow::persons`],
    /// 0024). Those issued before 0015 name them in `preetabli_lines`, a reference.
    pub async fn listing_preetablis(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PreetabliPersons>> {
        Ok(with_pool!(self, |p| sqlx::query_as(
            "SELECT id, employees, persons FROM preetablis \
             WHERE id > $1 AND (employees IS NOT NULL OR persons IS NOT NULL) ORDER BY id LIMIT $2"
        )
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?))
    }

    /// Replaces préétablis' employees (sealed) and person lists: (id, employees, persons).
    pub async fn set_preetabli_persons(&self, rows: &[PreetabliPersons]) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for (id, employees, persons) in rows {
                sqlx::query("UPDATE preetablis SET employees = $1, persons = $2 WHERE id = $3")
                    .bind(employees.as_deref())
                    .bind(persons.as_deref())
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Up to `limit` rejected files after `after` (by id) that name persons: (id, persons).
    pub async fn naming_rejections(&self, after: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>> {
        Ok(with_pool!(self, |p| sqlx::query_as(
            "SELECT id, persons FROM declaration_rejections \
             WHERE id > $1 AND persons IS NOT NULL ORDER BY id LIMIT $2"
        )
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?))
    }

    /// Replaces rejected files' person lists: (id, persons).
    pub async fn set_rejection_persons(&self, rows: &[(i64, Vec<u8>)]) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for (id, persons) in rows {
                sqlx::query("UPDATE declaration_rejections SET persons = $1 WHERE id = $2")
                    .bind(persons.as_slice())
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Up to `limit` declarations after `after` whose blocks of lines still name persons by
    /// serial. A declaration's blocks are rewritten together, and a block's last person is
    /// its highest: a declaration is still to do when a block ends on a serial (a block of
    /// claims' lines alone ends below zero, `crate::claim_line_subject`).
    pub async fn serial_declarations(&self, after: i64, limit: i64) -> Result<Vec<i64>> {
        Ok(with_pool!(self, |p| sqlx::query_scalar(
            "SELECT DISTINCT declaration_id FROM declaration_line_blocks \
             WHERE declaration_id > $1 AND last_person >= 0 AND last_person < $2 \
             ORDER BY declaration_id LIMIT $3"
        )
        .bind(after)
        .bind(PERSON_ID_BASE)
        .bind(limit)
        .fetch_all(p)
        .await?))
    }

    /// How many declarations [`Store::serial_declarations`] has to give.
    pub async fn count_serial_declarations(&self) -> Result<i64> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(DISTINCT declaration_id) FROM declaration_line_blocks \
             WHERE last_person >= 0 AND last_person < $1",
            )
            .bind(PERSON_ID_BASE)
            .fetch_one(p)
            .await?
        }))
    }

    /// Replaces the blocks of declarations' lines with `blocks` (every block of each
    /// declaration it names), in one transaction. Declarations are immutable: their triggers
    /// refuse this to every other writer, so they are lifted for this transaction only
    /// (PostgreSQL: the table's owner, as migrations run; SQLite: dropped and made again).
    pub async fn replace_declaration_blocks(&self, blocks: &[LineBlock]) -> Result<()> {
        let mut ids: Vec<i64> = blocks.iter().map(|b| b.declaration_id).collect();
        ids.dedup();
        match &self.pool {
            crate::Pool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                // A write first, so the transaction holds the write lock before it reads (a
                // read first would fail at once, not wait, if another connection wrote in
                // between: SQLITE_BUSY_SNAPSHOT).
                sqlx::query("UPDATE counters SET next_value = next_value WHERE name = $1")
                    .bind(SERIAL_MARK)
                    .execute(&mut *tx)
                    .await?;
                let trigger: String = sqlx::query_scalar(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' \
                     AND name = 'declaration_line_blocks_no_delete'",
                )
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("DROP TRIGGER declaration_line_blocks_no_delete")
                    .execute(&mut *tx)
                    .await?;
                for id in &ids {
                    sqlx::query("DELETE FROM declaration_line_blocks WHERE declaration_id = $1")
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
                crate::declarations::insert_blocks!(tx, blocks);
                sqlx::raw_sql(sqlx::AssertSqlSafe(trigger))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            crate::Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(
                    "ALTER TABLE declaration_line_blocks DISABLE TRIGGER declaration_line_blocks_immutable",
                )
                .execute(&mut *tx)
                .await?;
                for id in &ids {
                    sqlx::query("DELETE FROM declaration_line_blocks WHERE declaration_id = $1")
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
                crate::declarations::insert_blocks!(tx, blocks);
                sqlx::query(
                    "ALTER TABLE declaration_line_blocks ENABLE TRIGGER declaration_line_blocks_immutable",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}
