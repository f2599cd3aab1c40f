//! The ledger: entries and their postings, payments, and the sums statements and the check
//! read. Accounts and kinds of entry are `domain::ledger`'s enums: an account the store does
//! not know cannot be written, and one read back that it does not know is corruption.

use crate::{Result, Store, with_pool};
use domain::Centimes;
use domain::ledger::{Account, EntryCode, Posting};
use sqlx::Row;

/// One balanced ledger movement and its postings (debit > 0, credit < 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntryRow {
    pub id: i64,
    /// The idempotency key ([`EntryCode::key`]): the same movement is never posted twice.
    pub key: String,
    /// Why the movement exists (column `kind`).
    pub code: EntryCode,
    /// `None` for an entry of the whole fund (an allocation to the branches).
    pub employer_id: Option<i64>,
    pub period: i64,
    pub at: i64,
    pub postings: Vec<Posting>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: i64,
    pub employer_id: i64,
    pub period: i64,
    pub bank_reference: String,
    pub amount: i64,
    pub paid_on: String,
    pub entry_id: i64,
    pub received_at: i64,
}

/// One row of an employer's statement: what the ledger says for a period, by kind of entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivableRow {
    pub period: i64,
    pub code: EntryCode,
    pub amount: Centimes,
}

/// The ids of the ledger accounts the postings of `$entries` name, in transaction `$tx`
/// (either backend): an account not seen before is added. The insert comes first: on SQLite a
/// deferred transaction that reads and then writes fails at once ("database is locked") if
/// another connection wrote in between, while one that writes first waits for the lock. (On
/// PostgreSQL each name already there uses up a number of the identity: gaps, never reused.)
macro_rules! account_ids {
    ($tx:ident, $entries:expr) => {{
        let names = account_names($entries);
        let mut ids: AccountIds = AccountIds::default();
        for chunk in names.chunks(crate::BATCH) {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO ledger_accounts (name) ");
            q.push_values(chunk, |mut b, n| {
                b.push_bind(*n);
            });
            q.push(" ON CONFLICT (name) DO NOTHING");
            q.build().execute(&mut **$tx).await?;
            let mut q =
                sqlx::QueryBuilder::new("SELECT id, name FROM ledger_accounts WHERE name IN (");
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(*n);
            }
            q.push(")");
            for r in q.build().fetch_all(&mut **$tx).await? {
                let name: String = r.try_get("name")?;
                let account =
                    Account::parse(&name).ok_or(crate::StoreError::Corrupt("ledger account"))?;
                ids.set(account, r.try_get("id")?);
            }
        }
        ids
    }};
}

/// The names of the accounts the postings of `entries` name, each once, sorted. A batch names
/// a dozen accounts a hundred thousand times: a set of them is sorted, not every name.
fn account_names(entries: &[LedgerEntryRow]) -> Vec<&'static str> {
    let mut seen = [false; Account::ALL.len()];
    for p in entries.iter().flat_map(|x| &x.postings) {
        if let Some(i) = Account::ALL.iter().position(|a| *a == p.account) {
            seen[i] = true;
        }
    }
    let mut names: Vec<&'static str> = Account::ALL
        .iter()
        .zip(seen)
        .filter(|(_, s)| *s)
        .map(|(a, _)| a.name())
        .collect();
    names.sort_unstable();
    names
}

/// Ledger account ids, by account: an import batch looks up its 80 000 postings' accounts
/// here, on the writer's path, so a lookup is a scan of sixteen pairs, not a hash.
#[derive(Default)]
struct AccountIds(Vec<(Account, i64)>);

impl AccountIds {
    fn set(&mut self, account: Account, id: i64) {
        self.0.push((account, id));
    }

    fn get(&self, account: Account) -> Option<i64> {
        self.0
            .iter()
            .find(|(a, _)| *a == account)
            .map(|(_, id)| *id)
    }
}

/// The (entry, account id, amount) rows of the postings of `entries`.
fn posting_rows(entries: &[LedgerEntryRow], ids: &AccountIds) -> Result<Vec<(i64, i64, i64)>> {
    entries
        .iter()
        .flat_map(|x| x.postings.iter().map(move |p| (x.id, p)))
        .map(|(entry, p)| {
            let id = ids
                .get(p.account)
                .ok_or(crate::StoreError::Corrupt("ledger account"))?;
            Ok((entry, id, p.amount.0))
        })
        .collect()
}

/// Ledger entries and their postings (SQLite): multi-row inserts with bound values (twice as
/// fast as expanding a JSON array with `json_each`, measured).
async fn sqlite_entries(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    entries: &[LedgerEntryRow],
) -> Result<()> {
    let ids = account_ids!(tx, entries);
    let tx = &mut **tx;
    crate::repo::each_chunk!(tx, entries, crate::BATCH, |chunk| {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO ledger_entries (id, key, kind, employer_id, period, at) ",
        );
        q.push_values(chunk, |mut b, x| {
            b.push_bind(x.id)
                .push_bind(x.key.as_str())
                .push_bind(x.code.as_str())
                .push_bind(x.employer_id)
                .push_bind(x.period)
                .push_bind(x.at);
        });
        q
    });
    let postings = posting_rows(entries, &ids)?;
    crate::repo::each_chunk!(tx, postings, crate::BATCH * 4, |chunk| {
        let mut q =
            sqlx::QueryBuilder::new("INSERT INTO ledger_postings (entry_id, account_id, amount) ");
        q.push_values(chunk, |mut b, (id, account, amount)| {
            b.push_bind(*id).push_bind(*account).push_bind(*amount);
        });
        q
    });
    Ok(())
}

/// Ledger entries in a transaction of either backend.
pub(crate) trait EntriesIn {
    async fn entries_in(&mut self, entries: &[LedgerEntryRow]) -> Result<()>;
}

impl EntriesIn for sqlx::Transaction<'_, sqlx::Sqlite> {
    async fn entries_in(&mut self, entries: &[LedgerEntryRow]) -> Result<()> {
        sqlite_entries(self, entries).await
    }
}

impl EntriesIn for sqlx::Transaction<'_, sqlx::Postgres> {
    async fn entries_in(&mut self, entries: &[LedgerEntryRow]) -> Result<()> {
        pg_entries(self, entries).await
    }
}

pub(crate) async fn entries_in<T: EntriesIn>(tx: &mut T, entries: &[LedgerEntryRow]) -> Result<()> {
    tx.entries_in(entries).await
}

/// The same on PostgreSQL (`UNNEST` of arrays).
async fn pg_entries(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    entries: &[LedgerEntryRow],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids = account_ids!(tx, entries);
    sqlx::query(
        "INSERT INTO ledger_entries (id, key, kind, employer_id, period, at) \
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[])",
    )
    .bind(entries.iter().map(|x| x.id).collect::<Vec<_>>())
    .bind(entries.iter().map(|x| x.key.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|x| x.code.as_str()).collect::<Vec<_>>())
    .bind(entries.iter().map(|x| x.employer_id).collect::<Vec<_>>())
    .bind(entries.iter().map(|x| x.period).collect::<Vec<_>>())
    .bind(entries.iter().map(|x| x.at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    let postings = posting_rows(entries, &ids)?;
    sqlx::query(
        "INSERT INTO ledger_postings (entry_id, account_id, amount) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[])",
    )
    .bind(postings.iter().map(|p| p.0).collect::<Vec<_>>())
    .bind(postings.iter().map(|p| p.1).collect::<Vec<_>>())
    .bind(postings.iter().map(|p| p.2).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A row of a receivable sum (columns `period`, `kind`, `amount`), from either backend.
macro_rules! receivable_row {
    ($r:expr) => {{
        let kind: String = $r.try_get("kind")?;
        ReceivableRow {
            period: $r.try_get("period")?,
            code: entry_code(&kind)?,
            amount: Centimes($r.try_get("amount")?),
        }
    }};
}

impl Store {
    /// Records a payment and its ledger entry. A bank reference already recorded is a
    /// [`crate::StoreError::Conflict`], and nothing is written.
    pub async fn insert_payment(&self, pay: &PaymentRow, entry: &LedgerEntryRow) -> Result<()> {
        let entries = std::slice::from_ref(entry);
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            entries_in(&mut tx, entries).await?;
            sqlx::query(
                "INSERT INTO payments (id, employer_id, period, bank_reference, amount, paid_on, entry_id, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(pay.id)
            .bind(pay.employer_id)
            .bind(pay.period)
            .bind(&pay.bank_reference)
            .bind(pay.amount)
            .bind(&pay.paid_on)
            .bind(pay.entry_id)
            .bind(pay.received_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn payment_by_reference(&self, reference: &str) -> Result<Option<PaymentRow>> {
        Ok(with_pool!(self, |p| sqlx::query_as::<_, PaymentRow>(
            "SELECT * FROM payments WHERE bank_reference = $1"
        )
        .bind(reference)
        .fetch_optional(p)
        .await?))
    }

    /// Records ledger entries on their own (surcharges). An idempotency key already used is a
    /// conflict and nothing is written.
    pub async fn insert_entries(&self, entries: &[LedgerEntryRow]) -> Result<()> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            entries_in(&mut tx, entries).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The postings of the ledger entry with this key (empty if there is none).
    pub async fn entry_postings(&self, key: &str) -> Result<Vec<Posting>> {
        with_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT a.name AS account, p.amount FROM ledger_entries e \
                 JOIN ledger_postings p ON p.entry_id = e.id \
                 JOIN ledger_accounts a ON a.id = p.account_id WHERE e.key = $1 ORDER BY a.name",
            )
            .bind(key)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    let name: String = r.try_get("account")?;
                    Ok(Posting::new(
                        account(&name)?,
                        Centimes(r.try_get("amount")?),
                    ))
                })
                .collect()
        })
    }

    /// An employer's receivable account, summed by period and kind of entry.
    pub async fn receivable(&self, employer_id: i64) -> Result<Vec<ReceivableRow>> {
        with_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT e.period, e.kind, CAST(SUM(p.amount) AS BIGINT) AS amount \
                 FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id \
                 WHERE e.employer_id = $1 AND p.account_id = \
                   (SELECT id FROM ledger_accounts WHERE name = 'receivable') \
                 GROUP BY e.period, e.kind ORDER BY e.period, e.kind",
            )
            .bind(employer_id)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| Ok(receivable_row!(r))).collect()
        })
    }

    /// Every employer's receivable account up to a period, by employer, period and kind of
    /// entry.
    pub async fn receivables_up_to(&self, period: i64) -> Result<Vec<(i64, ReceivableRow)>> {
        with_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT e.employer_id, e.period, e.kind, CAST(SUM(p.amount) AS BIGINT) AS amount \
                 FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id \
                 WHERE e.period <= $1 AND p.account_id = \
                   (SELECT id FROM ledger_accounts WHERE name = 'receivable') \
                 GROUP BY e.employer_id, e.period, e.kind ORDER BY e.employer_id, e.period, e.kind",
            )
            .bind(period)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("employer_id")?, receivable_row!(r))))
                .collect()
        })
    }

    /// Every account's balance (the whole fund), optionally for one period.
    pub async fn account_balances(&self, period: Option<i64>) -> Result<Vec<(Account, Centimes)>> {
        with_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT a.name AS account, CAST(SUM(p.amount) AS BIGINT) AS amount \
                 FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id \
                 JOIN ledger_accounts a ON a.id = p.account_id \
                 WHERE $1 IS NULL OR e.period = $1 GROUP BY a.name ORDER BY a.name",
            )
            .bind(period)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    let name: String = r.try_get("account")?;
                    Ok((account(&name)?, Centimes(r.try_get("amount")?)))
                })
                .collect()
        })
    }

    /// Ledger entries whose postings do not sum to zero, and entries without postings: both
    /// must always be empty.
    pub async fn unbalanced_entries(&self) -> Result<Vec<i64>> {
        with_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT e.id FROM ledger_entries e LEFT JOIN ledger_postings p ON p.entry_id = e.id \
                 GROUP BY e.id HAVING COUNT(p.entry_id) = 0 OR SUM(p.amount) <> 0 ORDER BY e.id",
            )
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        })
    }
}

/// An account read back: one the ledger knows, or corruption.
fn account(name: &str) -> Result<Account> {
    Account::parse(name).ok_or(crate::StoreError::Corrupt("ledger account"))
}

/// A kind of entry read back (column `kind`): one the ledger knows, or corruption.
fn entry_code(kind: &str) -> Result<EntryCode> {
    EntryCode::parse(kind).ok_or(crate::StoreError::Corrupt("ledger entry kind"))
}
