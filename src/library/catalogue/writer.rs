//! The catalogue's writer thread: every write in the order it was asked
//! for, and those nobody waits for held while the database does not
//! answer, then made once it does, so a database that goes away for a
//! while loses nothing.

use super::{Backend, Op};
use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the writer thread is asked: a write, and where its outcome goes
/// when the caller waits for it; or to report once every write before it
/// is made.
pub(super) enum Job {
    Write(Op, Option<mpsc::Sender<anyhow::Result<()>>>),
    Flush(mpsc::Sender<()>),
}

/// Writes nobody waits for that failed while the database did not answer
/// are held, in order, and made once it answers again, up to this many
/// (a probe result or key-frame index each); past it the oldest are
/// dropped, and those files are probed again at the next start.
const MAX_HELD: usize = 100_000;

/// How often held writes are tried again while no other write comes.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// The writer thread: makes each write in order until every sender is
/// gone, holding those nobody waits for while the database does not
/// answer (see [`MAX_HELD`]): those are tried again every
/// [`RETRY_EVERY`], not at each new write, so the thread keeps up while
/// the database is away. A write someone waits for (a position) is tried
/// at once, ahead of held ones (they are of other tables), and fails
/// within the pool's timeout.
pub(super) fn write_loop(backend: &dyn Backend, jobs: mpsc::Receiver<Job>) {
    let mut held: VecDeque<Op> = VecDeque::new();
    let mut tried = Instant::now();
    loop {
        let job = if held.is_empty() {
            match jobs.recv() {
                Ok(job) => Some(job),
                Err(_) => break,
            }
        } else {
            match jobs.recv_timeout(RETRY_EVERY.saturating_sub(tried.elapsed())) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        };
        if !held.is_empty() && tried.elapsed() >= RETRY_EVERY {
            make_held(backend, &mut held);
            tried = Instant::now();
        }
        match job {
            None => {}
            Some(Job::Flush(done)) => {
                let _ = done.send(());
            }
            // Behind writes still held: held too, so they keep their order.
            Some(Job::Write(op, None)) if !held.is_empty() => hold(&mut held, op),
            Some(Job::Write(op, reply)) => {
                let outcome = backend.apply(&op);
                if let Err(e) = &outcome {
                    tracing::warn!(error = %format!("{e:#}"), "cannot write the catalogue");
                }
                match reply {
                    Some(reply) => {
                        let _ = reply.send(outcome);
                    }
                    None if outcome.is_err() && backend.ping().is_err() => {
                        hold(&mut held, op);
                        tried = Instant::now();
                    }
                    None => {}
                }
            }
        }
    }
    if !held.is_empty() {
        tracing::warn!(
            writes = held.len(),
            "stopping with catalogue writes the database never took"
        );
    }
}

/// Keeps `op` to be made when the database answers again.
fn hold(held: &mut VecDeque<Op>, op: Op) {
    if held.len() >= MAX_HELD {
        held.pop_front();
        tracing::warn!("too many catalogue writes held: the oldest is dropped");
    }
    held.push_back(op);
}

/// Makes the held writes, in order, if the database answers. A write
/// that fails while it does answer is dropped (logged).
fn make_held(backend: &dyn Backend, held: &mut VecDeque<Op>) {
    if backend.ping().is_err() {
        return;
    }
    let before = held.len();
    while let Some(op) = held.front() {
        if let Err(e) = backend.apply(op) {
            if backend.ping().is_err() {
                return;
            }
            tracing::warn!(error = %format!("{e:#}"), "a held catalogue write fails: dropped");
        }
        held.pop_front();
    }
    tracing::info!(
        writes = before,
        "the database is back: held catalogue writes made"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::catalogue::{Stored, StoredKeyframes};
    use crate::library::item::FileStamp;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    /// A database that can be taken away: it records the paths removed.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        made: Mutex<Vec<String>>,
    }

    impl Backend for Flaky {
        fn load(&self) -> anyhow::Result<Vec<Stored>> {
            Ok(Vec::new())
        }
        fn load_one(&self, _: &str) -> anyhow::Result<Option<Stored>> {
            Ok(None)
        }
        fn keyframes(&self, _: &str, _: FileStamp) -> anyhow::Result<Option<StoredKeyframes>> {
            Ok(None)
        }
        fn progress(&self, _: &str, _: &str) -> anyhow::Result<Option<(i64, i64)>> {
            Ok(None)
        }
        fn apply(&self, op: &Op) -> anyhow::Result<()> {
            self.ping()?;
            if let Op::Remove(path) = op {
                self.made.lock().unwrap().push(path.clone());
            }
            Ok(())
        }
        fn ping(&self) -> anyhow::Result<()> {
            match self.down.load(Ordering::SeqCst) {
                true => anyhow::bail!("connection refused"),
                false => Ok(()),
            }
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    #[test]
    fn writes_made_while_the_database_is_away_are_made_in_order_when_it_is_back() {
        let db = Arc::new(Flaky::default());
        let (tx, rx) = mpsc::channel();
        let backend = db.clone();
        let writer = std::thread::spawn(move || write_loop(&*backend, rx));
        let write = |path: &str| tx.send(Job::Write(Op::Remove(path.into()), None)).unwrap();
        let flush = || {
            let (done, flushed) = mpsc::channel();
            tx.send(Job::Flush(done)).unwrap();
            flushed.recv().unwrap();
        };
        write("a");
        flush();
        db.down.store(true, Ordering::SeqCst);
        write("b");
        write("c");
        // A write someone waits for fails at once, and is not held.
        let (reply, outcome) = mpsc::channel();
        tx.send(Job::Write(Op::Remove("waited".into()), Some(reply)))
            .unwrap();
        assert!(outcome.recv().unwrap().is_err());
        write("d");
        flush();
        assert_eq!(*db.made.lock().unwrap(), ["a"]);
        db.down.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + RETRY_EVERY * 3;
        while db.made.lock().unwrap().len() < 4 {
            assert!(Instant::now() < deadline, "held writes not made");
            std::thread::sleep(Duration::from_millis(20));
        }
        write("e");
        drop(tx);
        writer.join().unwrap();
        assert_eq!(*db.made.lock().unwrap(), ["a", "b", "c", "d", "e"]);
    }
}
