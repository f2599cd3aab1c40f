//! The audit writer: group commit of audit events.
//!
//! Callers hand an event over and wait until it is durable. A single task drains whatever has
//! queued up meanwhile and writes it in one transaction (one fsync for the whole group), so the
//! cost of durability is shared by every request that arrived during the previous commit.

use crate::AppError;
use store::{AuditRow, Session, Store};
use tokio::sync::{mpsc, oneshot};

/// The most events one commit carries.
const MAX_GROUP: usize = store::BATCH;

type Pending = (AuditRow, oneshot::Sender<bool>);

/// Groups just committed, for the sequencer: the number of the first event, and the events.
pub(crate) type Committed = (i64, Vec<AuditRow>);

#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the writer. What it commits is also handed to `sealer` (when it keeps up; the
    /// sequencer reads the events back from the database otherwise).
    pub(crate) fn start(store: Store, sealer: mpsc::Sender<Committed>) -> AuditWriter {
        let (tx, rx) = mpsc::channel::<Pending>(16 * MAX_GROUP);
        tokio::spawn(run(store, rx, sealer));
        AuditWriter { tx }
    }

    /// Whether the writer task is still running.
    pub(crate) fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Returns once `row` is committed.
    pub async fn append(&self, row: AuditRow) -> Result<(), AppError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((row, done))
            .await
            .map_err(|_| AppError::Audit)?;
        match wait.await {
            Ok(true) => Ok(()),
            _ => Err(AppError::Audit),
        }
    }
}

impl AuditWriter {
    /// Returns once every row is committed: handed over together, so they share commits.
    pub async fn append_all(&self, rows: Vec<AuditRow>) -> Result<(), AppError> {
        let mut waits = Vec::with_capacity(rows.len());
        for row in rows {
            let (done, wait) = oneshot::channel();
            self.tx
                .send((row, done))
                .await
                .map_err(|_| AppError::Audit)?;
            waits.push(wait);
        }
        for wait in waits {
            if !matches!(wait.await, Ok(true)) {
                return Err(AppError::Audit);
            }
        }
        Ok(())
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>, sealer: mpsc::Sender<Committed>) {
    let mut group: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
    // The writer's own connection; reopened after a failure.
    let mut session: Option<Session> = None;
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        crate::gather_more(&mut rx, &mut group, MAX_GROUP).await;
        let (rows, waiting): (Vec<AuditRow>, Vec<oneshot::Sender<bool>>) = group.drain(..).unzip();
        let started = std::time::Instant::now();
        let result = match session.as_mut() {
            Some(s) => s.append_audit(&rows).await,
            None => match store.session().await {
                Ok(mut s) => {
                    let r = s.append_audit(&rows).await;
                    session = Some(s);
                    r
                }
                Err(e) => Err(e),
            },
        };
        let ok = match result {
            Ok(first) => {
                tracing::trace!(
                    events = rows.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "audit group committed"
                );
                // Done with the rows: the sequencer hashes them (never waiting for it).
                let _ = sealer.try_send((first, rows));
                true
            }
            Err(e) => {
                tracing::error!(error = %e, events = rows.len(), "audit append failed; requests refused");
                session = None;
                false
            }
        };
        for done in waiting {
            let _ = done.send(ok);
        }
    }
}
