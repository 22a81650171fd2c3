//! Writes: one writer thread, group commit.
//!
//! Every write goes to one dedicated OS thread that owns the read-write
//! [`Connection`]. SQLite allows one writer at a time anyway, so a single
//! owner removes lock contention (no `SQLITE_BUSY` between our own tasks) and
//! keeps blocking file I/O off the async runtime.
//!
//! A write is *acknowledged only once it is on disk*: the caller's future
//! resolves after the `COMMIT` that contains it has returned, and the database
//! runs with `journal_mode=WAL` and `synchronous=FULL`, so that commit has
//! fsynced the WAL. Paying one fsync per record would cap the server at a few
//! hundred (disk) to a few thousand (SSD) records a second, so commits are
//! grouped: the writer takes the first queued operation, then everything else
//! already queued (up to [`MAX_BATCH`]), runs them all in ONE transaction,
//! commits once, and only then answers each caller through its oneshot. Under
//! load, the queue fills while a commit's fsync is in flight, so the next
//! batch is larger: the fsync cost is shared by everyone who arrived during
//! the previous one. With one caller at a time a batch is one operation and
//! latency is a single fsync, as without batching.
//!
//! Each operation in a batch runs inside its own `SAVEPOINT`, so one failing
//! operation (a constraint, say) is rolled back and reported to its caller
//! alone, while the others still commit. If SQLite abandons the whole
//! transaction (disk full, I/O error) or the `COMMIT` fails, every caller of
//! the batch gets the error: nothing is ever acknowledged that is not on disk.
//!
//! The queue is a bounded tokio channel ([`QUEUE_CAPACITY`]): callers await
//! their acknowledgement, so the number of queued operations is bounded by the
//! number of concurrent callers anyway; the bound only adds async back-pressure
//! (`send().await`, never a blocked runtime thread) if some caller ever fires
//! writes without awaiting them.

use super::values::classify;
use super::SqliteStore;
use crate::store::StoreError;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// Most operations committed by one transaction.
const MAX_BATCH: usize = 1000;
/// Most operations waiting for the writer (see the module docs).
const QUEUE_CAPACITY: usize = 8192;

/// The sending end of the writer's queue; every clone of the store shares
/// one. The writer stops once the last one is dropped.
pub(super) struct Queue(mpsc::Sender<Msg>);

/// Starts the writer thread, which owns `conn` from now on.
pub(super) fn start(conn: Connection, path: PathBuf) -> std::io::Result<Queue> {
    let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
    std::thread::Builder::new()
        .name("quota-store-writer".into())
        .spawn(move || Writer::new(conn, path).run(receiver))?;
    Ok(Queue(queue))
}

impl SqliteStore {
    /// Finishes every write queued before it, checkpoints the WAL into the
    /// main file and closes the write connection. Every later write, from any
    /// clone, fails with [`StoreError::Closed`]; reads keep working until the
    /// last clone is dropped. Optional:
    /// dropping every clone also stops the writer, and acknowledged writes are
    /// on disk either way; this only makes the shutdown tidy and observable.
    pub async fn close(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        if self.inner.queue.0.send(Msg::Close(ack)).await.is_err() {
            return Ok(()); // Already closed.
        }
        done.await.unwrap_or(Ok(()))
    }

    /// Queues `f` for the writer and waits until the transaction that ran it
    /// has committed (or failed).
    pub(super) async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (ack, done) = oneshot::channel();
        let job = Box::new(TypedJob {
            op,
            f: Some(f),
            out: None,
            ack,
        });
        let closed = || StoreError::Closed {
            path: self.inner.path.clone(),
        };
        self.inner
            .queue
            .0
            .send(Msg::Job(job))
            .await
            .map_err(|_| closed())?;
        // A dropped ack means the writer stopped before answering.
        done.await.unwrap_or_else(|_| Err(closed()))
    }
}

enum Msg {
    Job(Box<dyn Job>),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// One queued write: run it in the batch's transaction, then (after the
/// commit) tell the caller how it went.
trait Job: Send {
    fn op(&self) -> &'static str;
    fn execute(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>, path: &Path);
}

struct TypedJob<T, F> {
    op: &'static str,
    f: Option<F>,
    /// The value `f` returned, held until the commit decides its fate.
    out: Option<T>,
    ack: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
{
    fn op(&self) -> &'static str {
        self.op
    }

    fn execute(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if let Some(f) = self.f.take() {
            self.out = Some(f(conn)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>, path: &Path) {
        let TypedJob { op, out, ack, .. } = *self;
        let reply = outcome.and_then(|()| {
            out.ok_or_else(|| StoreError::Failed {
                path: path.to_path_buf(),
                op,
                problem: "internal error: the operation did not run".to_string(),
            })
        });
        // The caller may have given up waiting; nothing to do then.
        let _ = ack.send(reply);
    }
}

struct Writer {
    conn: Connection,
    path: PathBuf,
}

impl Writer {
    fn new(conn: Connection, path: PathBuf) -> Self {
        Self { conn, path }
    }

    fn run(self, mut queue: mpsc::Receiver<Msg>) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
        let mut close_ack = None;
        // `blocking_recv` returns None once every sender (every clone of the
        // store) is gone: then the thread ends and the connection closes.
        while close_ack.is_none() {
            let Some(first) = queue.blocking_recv() else {
                break;
            };
            match first {
                Msg::Job(job) => batch.push(job),
                Msg::Close(ack) => close_ack = Some(ack),
            }
            // Group commit: take whatever else is already waiting.
            while close_ack.is_none() && batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(Msg::Job(job)) => batch.push(job),
                    Ok(Msg::Close(ack)) => close_ack = Some(ack),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                let outcomes = self.run_batch(&mut batch);
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    job.finish(outcome, &self.path);
                }
            }
        }
        // Refuse anything still queued: its callers get `Closed`.
        queue.close();
        while let Ok(msg) = queue.try_recv() {
            match msg {
                Msg::Job(job) => job.finish(Err(self.closed()), &self.path),
                Msg::Close(ack) => {
                    let _ = ack.send(Ok(()));
                }
            }
        }
        // Fold the WAL back into the main file so a stopped server leaves one
        // self-contained file. Best effort: the WAL is replayed on the next
        // open anyway.
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "checkpoint at close failed");
        }
        let path = self.path.clone();
        let closed = self.conn.close().map_err(|(_, e)| StoreError::Failed {
            path,
            op: "close",
            problem: e.to_string(),
        });
        if let Err(e) = &closed {
            tracing::warn!(error = %e, "closing the database failed");
        }
        if let Some(ack) = close_ack {
            let _ = ack.send(closed);
        }
    }

    /// Runs the batch in one transaction; one outcome per job, in order.
    fn run_batch(&self, batch: &mut [Box<dyn Job>]) -> Vec<Result<(), StoreError>> {
        let n = batch.len();
        let all_fail = |e: StoreError| vec![Err(e); n];
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            return all_fail(self.failed("begin transaction", e));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for job in batch.iter_mut() {
            outcomes.push(self.run_job(job.as_mut()));
            if self.conn.is_autocommit() {
                // SQLite rolled the whole transaction back (disk full, I/O
                // error...): nothing of this batch will reach the disk.
                let cause = outcomes
                    .pop()
                    .and_then(Result::err)
                    .map_or_else(|| "transaction aborted".to_string(), |e| e.to_string());
                let e = StoreError::Failed {
                    path: self.path.clone(),
                    op: "write batch",
                    problem: format!("the transaction was rolled back: {cause}"),
                };
                tracing::error!(error = %e, ops = n, "write batch lost");
                return all_fail(e);
            }
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            let e = self.failed("commit", e);
            tracing::error!(error = %e, ops = n, "commit failed");
            return all_fail(e);
        }
        outcomes
    }

    /// Runs one job inside a savepoint, so its failure undoes only its own
    /// changes.
    fn run_job(&self, job: &mut dyn Job) -> Result<(), StoreError> {
        let op = job.op();
        self.exec_cached("SAVEPOINT job")
            .map_err(|e| self.failed(op, e))?;
        match job.execute(&self.conn) {
            Ok(()) => self
                .exec_cached("RELEASE job")
                .map_err(|e| self.failed(op, e)),
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.exec_cached("ROLLBACK TO job");
                    let _ = self.exec_cached("RELEASE job");
                }
                let e = classify(&self.path, op, e);
                tracing::warn!(error = %e, "store operation failed");
                Err(e)
            }
        }
    }

    fn exec_cached(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    fn failed(&self, op: &'static str, e: rusqlite::Error) -> StoreError {
        classify(&self.path, op, e)
    }

    fn closed(&self) -> StoreError {
        StoreError::Closed {
            path: self.path.clone(),
        }
    }
}
