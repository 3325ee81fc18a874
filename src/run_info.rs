//! Run info: every greenlet of every hub, as a tree (gevent's
//! `gevent.util.print_run_info` and `GreenletTree`).
//!
//! [`run_info`] snapshots the calling thread's hub directly and asks every
//! other hub for a snapshot of its own (a greenlet posted through the hub's
//! cross-thread handle takes it there and sends it back as plain data). A
//! hub that does not answer within 200 ms is busy: its thread
//! runs code that does not switch (a greenlet in a loop, or the thread's
//! own code outside any greenlet) or is blocked natively. It is reported
//! as such, from the counters every hub publishes (which greenlet runs
//! there and where it was spawned), and `run_info` does not wait longer.
//!
//! `GREENRT_RUN_INFO_SIGNAL=SIGUSR2` prints the same report on stderr each
//! time that signal arrives (through [`crate::signal`]; the handler is
//! installed when the process creates its first hub). Like any greenrt
//! signal handler it keeps a watcher greenlet on the signal hub, so that
//! hub never reports "would block forever" while the variable is set.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::hub::task::Task;
use crate::hub::{self, Hub, HubShared};

/// Where a greenlet is in its life (the state gevent shows as
/// started/ready/dead).
pub use crate::hub::task::State as GreenletState;

/// How long [`run_info`] waits for the other hubs' answers, all together.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_millis(200);

/// Every hub of the process and its greenlets (see [`run_info`]).
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The process id.
    pub pid: i32,
    /// The calling thread's hub first (if it has one), then the main
    /// thread's, then the others by thread id.
    pub hubs: Vec<HubInfo>,
}

/// One hub: its thread, and either its greenlets or why they are missing.
#[derive(Clone, Debug)]
pub struct HubInfo {
    /// The name of the hub's thread (`"<unnamed>"` if it has none).
    pub thread_name: String,
    /// The kernel thread id.
    pub tid: i32,
    /// True for the process's main thread.
    pub is_main_thread: bool,
    /// True for the thread that called [`run_info`].
    pub is_caller: bool,
    /// Id of the thread's root greenlet (its own stack, not spawned).
    pub root_id: u64,
    /// Spawned greenlets that have not finished.
    pub live: usize,
    /// Greenlet switches so far.
    pub switches: u64,
    /// The poller backend (`None` when the hub was busy).
    pub backend: Option<&'static str>,
    /// The root first, then every live greenlet by id; empty when busy.
    pub greenlets: Vec<GreenletInfo>,
    /// Set when the hub did not answer in time.
    pub busy: Option<BusyInfo>,
}

/// A hub that did not answer: what its published counters say.
#[derive(Clone, Debug)]
pub struct BusyInfo {
    /// How long [`run_info`] waited.
    pub waited: Duration,
    /// The greenlet running there (the root's id when the thread runs its
    /// own code outside any greenlet).
    pub running: u64,
    /// Its name, if it was given one.
    pub running_name: Option<String>,
    /// Where it was spawned (`None` for the root).
    pub running_site: Option<String>,
    /// The named live greenlets of that hub: `(id, name)`.
    pub named: Vec<(u64, String)>,
}

/// One greenlet (gevent's `GreenletTree` node).
#[derive(Clone, Debug)]
pub struct GreenletInfo {
    /// Process-unique id.
    pub id: u64,
    /// Its name (`Greenlet-<id>` unless set; `main` for a root).
    pub name: String,
    /// True for the thread's root greenlet.
    pub is_root: bool,
    /// Where it is in its life.
    pub state: GreenletState,
    /// What it waits on when parked (`"join"`, `"Event.wait"`,
    /// `"fd 7 (read)"`, `"sleep"`, `"another thread"`, ...); `"-"` when it
    /// does not wait.
    pub waiting_on: String,
    /// Id of the greenlet that spawned it (0 for a root).
    pub parent: u64,
    /// `file:line:col` of the `spawn` call (`None` for a root).
    pub spawn_site: Option<String>,
    /// Time since it was spawned (since the hub was created, for a root).
    pub age: Duration,
    /// Its stack size in bytes (0 for a root).
    pub stack_size: usize,
}

impl HubInfo {
    /// The first greenlet of this hub with this name.
    pub fn find(&self, name: &str) -> Option<&GreenletInfo> {
        self.greenlets.iter().find(|g| g.name == name)
    }
}

impl RunInfo {
    /// The first greenlet with this name, in any hub, with its hub.
    pub fn find(&self, name: &str) -> Option<(&HubInfo, &GreenletInfo)> {
        self.hubs.iter().find_map(|h| h.find(name).map(|g| (h, g)))
    }
}

fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

fn info(t: &Task, now: Instant) -> GreenletInfo {
    let state = t.state.get();
    GreenletInfo {
        id: t.id,
        name: t.display_name(),
        is_root: t.is_root,
        state,
        waiting_on: if state == GreenletState::Parked {
            t.waiting_on.get().to_string()
        } else {
            "-".to_string()
        },
        parent: t.parent,
        spawn_site: (!t.is_root).then(|| t.spawn_site.to_string()),
        age: now.saturating_duration_since(t.spawned_at),
        stack_size: t.stack_size,
    }
}

/// Snapshots the hub of the calling thread, leaving out `exclude` (the
/// greenlet that takes the snapshot for another thread).
fn snapshot(h: &Hub, exclude: Option<u64>, is_caller: bool) -> HubInfo {
    let now = Instant::now();
    let mut live: Vec<GreenletInfo> = h
        .live_tasks()
        .iter()
        .filter(|t| Some(t.id) != exclude)
        .map(|t| info(t, now))
        .collect();
    live.sort_by_key(|g| g.id);
    let mut greenlets = Vec::with_capacity(live.len() + 1);
    greenlets.push(info(&h.root, now));
    greenlets.append(&mut live);
    let s = &h.shared;
    HubInfo {
        thread_name: s.thread_name.clone(),
        tid: s.tid,
        is_main_thread: s.tid == getpid(),
        is_caller,
        root_id: h.root.id,
        live: greenlets.len() - 1,
        switches: h.switches(),
        backend: Some(h.backend_name()),
        greenlets,
        busy: None,
    }
}

/// What a hub that did not answer publishes about itself.
fn busy_info(s: &HubShared, waited: Duration) -> HubInfo {
    let running = s.running.load(Ordering::Relaxed);
    let site = s.running_site.load(Ordering::Relaxed);
    let mut named: Vec<(u64, String)> = s
        .names
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(id, n)| (*id, n.clone()))
        .collect();
    named.sort();
    let running_name = named.iter().find(|(id, _)| *id == running).map(|(_, n)| n.clone());
    HubInfo {
        thread_name: s.thread_name.clone(),
        tid: s.tid,
        is_main_thread: s.tid == getpid(),
        is_caller: false,
        root_id: s.root_id,
        live: s.live.load(Ordering::Relaxed),
        switches: s.switches.load(Ordering::Relaxed),
        backend: None,
        greenlets: Vec::new(),
        busy: Some(BusyInfo {
            waited,
            running,
            running_name,
            running_site: if site.is_null() {
                None
            } else {
                // SAFETY: the hub only ever stores `&'static Location`s
                // (spawn sites) or null here, so a non-null value points
                // at a location that lives for the whole program.
                Some(unsafe { &*(site as *const Location<'static>) }.to_string())
            },
            named,
        }),
    }
}

/// True if `tid` is a thread of this process (a hub inherited across fork
/// belongs to a thread that does not exist in the child).
fn thread_exists(tid: i32) -> bool {
    // SAFETY: tgkill with signal 0 only checks that the thread exists.
    unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, 0) == 0 }
}

/// Every greenlet of every hub of the process, with its name, state, what
/// it waits on, its parent and its spawn site (gevent's
/// `gevent.util.print_run_info` data, and its `GreenletTree`). `Display`
/// prints one tree per hub.
///
/// Other hubs answer through their event loop; this waits at most
/// 200 ms for all of them together and reports a hub that did
/// not answer as busy. Called on a thread with a hub, it waits
/// cooperatively (its own hub keeps running, in short sleeps, so a kill or
/// `Timeout` can interrupt it like any blocking call); on a thread without
/// one it blocks the thread and does not create a hub.
pub fn run_info() -> RunInfo {
    let own = hub::try_with_existing(|h| (snapshot(h, None, true), h.shared.clone()));
    let pid = getpid();
    let mut hubs = Vec::new();
    let mut own_shared = None;
    if let Some((info, shared)) = own {
        hubs.push(info);
        own_shared = Some(shared);
    }
    let start = Instant::now();
    let (tx, rx) = mpsc::channel::<(usize, HubInfo)>();
    let mut asked: Vec<Arc<HubShared>> = Vec::new();
    for s in hub::all_hubs() {
        if own_shared.as_ref().is_some_and(|o| Arc::ptr_eq(o, &s)) || !thread_exists(s.tid) {
            continue;
        }
        let Some(handle) = s.handle() else { continue };
        let i = asked.len();
        let tx = tx.clone();
        let posted = handle.spawn(move || {
            let info = hub::with(|h| {
                let me = h.current_id();
                snapshot(h, Some(me), false)
            });
            let _ = tx.send((i, info));
        });
        if posted.is_ok() {
            asked.push(s);
        }
    }
    drop(tx);
    let mut answers: Vec<Option<HubInfo>> = vec![None; asked.len()];
    let mut missing = asked.len();
    let deadline = start + ANSWER_WITHIN;
    let cooperative = own_shared.is_some() && !std::thread::panicking();
    while missing > 0 {
        let got = match rx.try_recv() {
            Ok(a) => Some(a),
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                if cooperative {
                    crate::greenlet::sleep((deadline - now).min(Duration::from_millis(1)));
                    None
                } else {
                    rx.recv_timeout(deadline - now).ok()
                }
            }
        };
        if let Some((i, info)) = got {
            if answers[i].is_none() {
                missing -= 1;
            }
            answers[i] = Some(info);
        }
    }
    let waited = start.elapsed();
    let mut others: Vec<HubInfo> = Vec::new();
    for (s, a) in asked.iter().zip(answers) {
        match a {
            Some(info) => others.push(info),
            // Its thread exited meanwhile: nothing to report.
            None if s.handle().is_none() => {}
            None => others.push(busy_info(s, waited)),
        }
    }
    others.sort_by_key(|h| (!h.is_main_thread, h.tid));
    hubs.append(&mut others);
    RunInfo { pid, hubs }
}

/// Prints [`run_info`] on stderr (gevent's `print_run_info`).
pub fn print_run_info() {
    let text = run_info().to_string();
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

// ===== display =====

fn fmt_age(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn state_word(s: GreenletState) -> &'static str {
    match s {
        GreenletState::New => "not started",
        GreenletState::Runnable => "runnable",
        GreenletState::Running => "running",
        GreenletState::Parked => "parked",
        GreenletState::Dead => "dead",
    }
}

impl fmt::Display for GreenletInfo {
    /// One line: `name (id N) parked on Event.wait, spawned at
    /// src/main.rs:10:5, age 12 ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (id {}", self.name, self.id)?;
        if self.is_root {
            f.write_str(", thread root")?;
        }
        write!(f, ") {}", state_word(self.state))?;
        if self.state == GreenletState::Parked && self.waiting_on != "-" {
            write!(f, " on {}", self.waiting_on)?;
        }
        if let Some(site) = &self.spawn_site {
            write!(f, ", spawned at {site}")?;
        }
        write!(f, ", age {}", fmt_age(self.age))
    }
}

impl HubInfo {
    fn write_children(
        &self,
        f: &mut fmt::Formatter<'_>,
        kids: &BTreeMap<u64, Vec<&GreenletInfo>>,
        parent: u64,
        prefix: &str,
    ) -> fmt::Result {
        let Some(list) = kids.get(&parent) else { return Ok(()) };
        for (i, g) in list.iter().enumerate() {
            let last = i + 1 == list.len();
            write!(f, "{prefix}+--- {g}")?;
            if g.parent != parent {
                write!(f, " (parent {} finished)", g.parent)?;
            }
            writeln!(f)?;
            let deeper = format!("{prefix}{}", if last { "     " } else { "|    " });
            self.write_children(f, kids, g.id, &deeper)?;
        }
        Ok(())
    }
}

impl fmt::Display for HubInfo {
    /// A header line, then the tree: the root at the top, each greenlet
    /// under the greenlet that spawned it; one whose parent has finished
    /// hangs under the root, marked `(parent N finished)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hub on thread {:?} (tid {}", self.thread_name, self.tid)?;
        if self.is_main_thread {
            f.write_str(", main thread")?;
        }
        if self.is_caller {
            f.write_str(", calling thread")?;
        }
        f.write_str(")")?;
        if let Some(b) = &self.busy {
            writeln!(
                f,
                " is busy: no snapshot (it did not run its event loop within {} ms)",
                b.waited.as_millis()
            )?;
            if b.running == self.root_id {
                writeln!(
                    f,
                    "  running: the thread's root (its own code, outside any greenlet, or blocked natively)"
                )?;
            } else {
                write!(f, "  running: greenlet ")?;
                if let Some(n) = &b.running_name {
                    write!(f, "{n} ")?;
                }
                write!(f, "(id {})", b.running)?;
                if let Some(s) = &b.running_site {
                    write!(f, ", spawned at {s}")?;
                }
                writeln!(f)?;
            }
            write!(f, "  {} greenlets alive, {} switches", self.live, self.switches)?;
            if !b.named.is_empty() {
                f.write_str("; named:")?;
                for (i, (id, n)) in b.named.iter().enumerate() {
                    write!(f, "{} {n} (id {id})", if i == 0 { "" } else { "," })?;
                }
            }
            return writeln!(f);
        }
        writeln!(
            f,
            ": {}, {} switches, {} greenlets alive",
            self.backend.unwrap_or("?"),
            self.switches,
            self.live
        )?;
        let present: std::collections::HashSet<u64> = self.greenlets.iter().map(|g| g.id).collect();
        let mut kids: BTreeMap<u64, Vec<&GreenletInfo>> = BTreeMap::new();
        for g in self.greenlets.iter().filter(|g| !g.is_root) {
            // A parent is always older (smaller id); anything else, or a
            // parent that has finished, hangs under the root.
            let p = if g.parent < g.id && present.contains(&g.parent) {
                g.parent
            } else {
                self.root_id
            };
            kids.entry(p).or_default().push(g);
        }
        match self.greenlets.iter().find(|g| g.is_root) {
            Some(root) => writeln!(f, "{root}")?,
            None => writeln!(f, "(root {})", self.root_id)?,
        }
        self.write_children(f, &kids, self.root_id, "")
    }
}

impl fmt::Display for RunInfo {
    /// Every hub's tree, the calling thread's first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "greenrt run info (pid {}): {} hub{}",
            self.pid,
            self.hubs.len(),
            if self.hubs.len() == 1 { "" } else { "s" }
        )?;
        for h in &self.hubs {
            writeln!(f)?;
            write!(f, "{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: u64, parent: u64, name: &str) -> GreenletInfo {
        GreenletInfo {
            id,
            name: name.to_string(),
            is_root: parent == 0,
            state: if parent == 0 {
                GreenletState::Running
            } else {
                GreenletState::Parked
            },
            waiting_on: if parent == 0 { "-".into() } else { "sleep".into() },
            parent,
            spawn_site: (parent != 0).then(|| "src/x.rs:1:2".to_string()),
            age: Duration::from_millis(5),
            stack_size: 0,
        }
    }

    #[test]
    fn tree_shape() {
        let hub = HubInfo {
            thread_name: "t".into(),
            tid: 7,
            is_main_thread: false,
            is_caller: true,
            root_id: 1,
            live: 4,
            switches: 3,
            backend: Some("epoll"),
            greenlets: vec![
                g(1, 0, "main"),
                g(2, 1, "a"),
                g(3, 2, "b"),
                g(4, 2, "c"),
                g(6, 5, "orphan"),
            ],
            busy: None,
        };
        let text = hub.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "main (id 1, thread root) running, age 5 ms");
        assert_eq!(
            lines[2],
            "+--- a (id 2) parked on sleep, spawned at src/x.rs:1:2, age 5 ms"
        );
        assert!(lines[3].starts_with("|    +--- b (id 3)"), "{text}");
        assert!(lines[4].starts_with("|    +--- c (id 4)"), "{text}");
        assert!(lines[5].starts_with("+--- orphan (id 6)"), "{text}");
        assert!(lines[5].ends_with("(parent 5 finished)"), "{text}");
        assert_eq!(lines.len(), 6, "{text}");
    }
}
