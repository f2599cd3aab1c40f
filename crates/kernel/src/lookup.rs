//! Batched lookups by blind index: concurrent requests share one query.
//!
//! Each lookup costs a round trip to the database (and, with SQLite, a hand-off to its worker
//! thread). Under load, requests that arrive while a query runs are gathered and answered by the
//! next query, `WHERE bidx IN (…)`, exactly as the audit writer groups commits. A few batches run
//! at once so that a slow one does not hold the others.

use crate::AppError;
use std::collections::HashMap;
use std::sync::Arc;
use store::{LOOKUP_BATCH, Lookup, PersonCipher, Session, Store};
use tokio::sync::{Mutex, mpsc, oneshot};

type Found = Vec<(i64, PersonCipher)>;
type Reply = Result<Found, AppError>;
type Pending = (Lookup, Vec<u8>, oneshot::Sender<Reply>);

#[derive(Clone)]
pub(crate) struct LookupBatcher {
    tx: mpsc::Sender<Pending>,
}

impl LookupBatcher {
    pub(crate) fn start(store: Store, parallel: usize) -> LookupBatcher {
        let (tx, rx) = mpsc::channel(16 * LOOKUP_BATCH);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..parallel.max(1) {
            tokio::spawn(run(store.clone(), rx.clone()));
        }
        LookupBatcher { tx }
    }

    /// Whether the lookup tasks are still running.
    pub(crate) fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// The persons whose `by` blind index is `key`.
    pub async fn find(&self, by: Lookup, key: Vec<u8>) -> Result<Found, AppError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((by, key, done))
            .await
            .map_err(|_| AppError::Internal("lookup"))?;
        wait.await.map_err(|_| AppError::Internal("lookup"))?
    }
}

/// A slot: takes whatever lookups are waiting (up to a batch), answers them with one query on
/// its own connection, and starts over. While one slot queries, the next gathers a batch.
async fn run(store: Store, rx: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    let mut session: Option<Session> = None;
    loop {
        let mut batch: Vec<Pending> = Vec::with_capacity(LOOKUP_BATCH);
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, LOOKUP_BATCH).await == 0 {
                return;
            }
            crate::gather_more(&mut rx, &mut batch, LOOKUP_BATCH).await;
        }
        // On a failure the connection is replaced and the unanswered lookups tried once more
        // (they only read): a restarted database costs a retry, not a batch of errors.
        let mut retried = false;
        loop {
            if session.is_none() {
                match store.session().await {
                    Ok(s) => session = Some(s),
                    Err(e) => {
                        fail(batch, &e);
                        break;
                    }
                }
            }
            let Some(s) = session.as_mut() else { break };
            match answer(s, batch).await {
                Ok(()) => break,
                Err((e, rest)) => {
                    session = None;
                    if retried {
                        fail(rest, &e);
                        break;
                    }
                    retried = true;
                    batch = rest;
                }
            }
        }
    }
}

fn fail(batch: Vec<Pending>, e: &store::StoreError) {
    tracing::error!(error = %e, source = ?std::error::Error::source(e).map(|s| s.to_string()), "batched lookup failed");
    let overload = e.is_overload();
    for (_, _, done) in batch {
        let _ = done.send(Err(if overload {
            AppError::Unavailable
        } else {
            AppError::Internal("lookup")
        }));
    }
}

/// Answers a batch: one query per kind of lookup. On a failure, returns the error and every
/// lookup not answered yet.
async fn answer(
    session: &mut Session,
    batch: Vec<Pending>,
) -> Result<(), (store::StoreError, Vec<Pending>)> {
    let (cin, immatriculation): (Vec<Pending>, Vec<Pending>) =
        batch.into_iter().partition(|(by, _, _)| *by == Lookup::Cin);
    let mut groups = vec![
        (Lookup::Cin, cin),
        (Lookup::Immatriculation, immatriculation),
    ]
    .into_iter();
    while let Some((by, group)) = groups.next() {
        if group.is_empty() {
            continue;
        }
        let mut keys: Vec<Vec<u8>> = group.iter().map(|(_, k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        let rows = match session.persons_by_bidx(by, &keys).await {
            Ok(rows) => rows,
            Err(e) => {
                let rest = group
                    .into_iter()
                    .chain(groups.flat_map(|(_, g)| g))
                    .collect();
                return Err((e, rest));
            }
        };
        let mut by_key: HashMap<Vec<u8>, Found> = HashMap::with_capacity(rows.len());
        for (k, id, c) in rows {
            by_key.entry(k).or_default().push((id, c));
        }
        let mut waiting: HashMap<&[u8], usize> = HashMap::with_capacity(group.len());
        for (_, key, _) in &group {
            *waiting.entry(key.as_slice()).or_default() += 1;
        }
        let mut last: Vec<bool> = Vec::with_capacity(group.len());
        for (_, key, _) in &group {
            let n = waiting.entry(key.as_slice()).or_default();
            *n -= 1;
            last.push(*n == 0);
        }
        for ((_, key, done), last) in group.into_iter().zip(last) {
            // Usually one request per key: hand the rows over; clone only for a repeat.
            let mine = if last {
                by_key.remove(&key)
            } else {
                by_key.get(&key).cloned()
            };
            let _ = done.send(Ok(mine.unwrap_or_default()));
        }
    }
    Ok(())
}
