//! The driver thread: moves bytes between sockets and the core, sleeps
//! until the core's deadline or the next input, and wakes waiters when
//! something happened. It makes no decision about Kafka; the core does.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use odradek_core::{BrokerAddress, ConnId, Error, Io};

/// How long a write may make no progress before its connection counts as
/// broken: the driver writes inline, so a peer that stops reading must not
/// hold it (and `close`) for longer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// State shared by the user-facing handle and the driver thread.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Signalled when something changed that a waiting call may care about.
    pub(crate) changed: Condvar,
    inputs: Sender<Input>,
    /// A `Wake` is queued and not yet taken: no need to queue another.
    wake_pending: AtomicBool,
    listener_thread: ListenerThread,
}

pub(crate) type State = odradek_core::Session;

/// Who runs the rebalance listener: a thread (see [`odradek_core::ListenerOwner`]).
pub(crate) type ListenerThread = odradek_core::ListenerOwner<std::thread::ThreadId>;

/// A [`ListenerThread`] naming callers by their thread.
pub(crate) fn listener_thread() -> ListenerThread {
    ListenerThread::new(|| std::thread::current().id())
}

impl Shared {
    /// The time commands run at: the core reads no clock.
    pub(crate) fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.listener_thread.check();
        // The core never panics on input; a poisoned lock only means a
        // panic elsewhere while it was held, and the state is still usable.
        lock(&self.state)
    }

    /// A command changed the core: the driver must drain its outputs.
    pub(crate) fn wake_driver(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            // Fails only once the driver has exited, when nothing is left to do.
            let _ = self.inputs.send(Input::Wake);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What reaches the driver, in one channel.
enum Input {
    Wake,
    Conn(ConnId, ConnEvent),
}

/// What a connection thread reports.
enum ConnEvent {
    Connected,
    Failed(String),
    Data(Vec<u8>),
    Closed,
}

/// A connection as both the driver and its thread see it. The lock makes
/// "the driver closed it" and "the thread connected" exclusive, so a socket
/// that opens after its close is shut at once and no reader outlives it.
enum Slot {
    Connecting,
    Open(TcpStream),
    Closed,
}

fn close_slot(slot: &Mutex<Slot>) {
    let mut slot = lock(slot);
    if let Slot::Open(stream) = &*slot {
        // Ends the blocking read in the connection's thread.
        let _ = stream.shutdown(Shutdown::Both);
    }
    *slot = Slot::Closed;
}

/// Starts the driver thread for `core`.
///
/// # Panics
/// If the operating system cannot create a thread.
pub(crate) fn start(core: odradek_core::Consumer) -> Result<Arc<Shared>, Error> {
    let (inputs, receiver) = mpsc::channel();
    let listener_thread = listener_thread();
    let mut session = State::new(core);
    session.set_listener_scope(listener_thread.scope());
    let shared = Arc::new(Shared {
        state: Mutex::new(session),
        changed: Condvar::new(),
        inputs,
        wake_pending: AtomicBool::new(false),
        listener_thread,
    });
    let driver = shared.clone();
    thread::Builder::new()
        .name("odradek-driver".into())
        .spawn(move || run(&driver, &receiver))
        .map_err(|e| Error::Runtime(format!("cannot start the driver thread: {e}")))?;
    Ok(shared)
}

/// Runs until the core is closed and its last outputs are drained.
fn run(shared: &Shared, inputs: &Receiver<Input>) {
    let setup_timeout = shared.lock().core.config().connection_setup_timeout;
    let mut conns: HashMap<ConnId, Arc<Mutex<Slot>>> = HashMap::new();
    loop {
        // Drain every output the core has (the sans-IO rule), then act on them.
        let drained = shared.lock().drain();
        let deadline = drained.timeout;
        for callback in drained.callbacks {
            callback.run();
        }
        for io in drained.io {
            match io {
                Io::Connect { conn, address } => {
                    let slot = Arc::new(Mutex::new(Slot::Connecting));
                    conns.insert(conn, slot.clone());
                    spawn_connection(conn, address, setup_timeout, slot, &shared.inputs);
                }
                Io::Send { conn, data } => {
                    if let Some(slot) = conns.get(&conn) {
                        write(slot, &data);
                    }
                }
                Io::Close { conn } => {
                    if let Some(slot) = conns.remove(&conn) {
                        close_slot(&slot);
                    }
                }
            }
        }
        if drained.wake_waiters {
            shared.changed.notify_all();
        }
        if drained.closed {
            for slot in conns.values() {
                close_slot(slot);
            }
            shared.lock().set_finished();
            shared.changed.notify_all();
            return;
        }
        let input = match deadline {
            Some(at) => inputs.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => inputs.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let mut state = shared.lock();
        let now = Instant::now();
        match input {
            Ok(Input::Wake) => shared.wake_pending.store(false, Ordering::Release),
            // Reports from a connection the core closed are stale.
            Ok(Input::Conn(conn, event)) if conns.contains_key(&conn) => match event {
                ConnEvent::Connected => state.core.handle_connected(conn, now),
                ConnEvent::Failed(reason) => {
                    conns.remove(&conn);
                    state.core.handle_connect_failed(conn, &reason, now);
                }
                ConnEvent::Data(data) => state.core.handle_received(conn, &data, now),
                ConnEvent::Closed => {
                    if let Some(slot) = conns.remove(&conn) {
                        close_slot(&slot);
                    }
                    state.core.handle_disconnected(conn, now);
                }
            },
            Ok(Input::Conn(..)) | Err(RecvTimeoutError::Timeout) => {}
            // Cannot happen while `shared` holds a sender; stop cleanly anyway.
            Err(RecvTimeoutError::Disconnected) => state.core.close(now),
        }
        // Checked after every input too, so a steady stream of inputs
        // cannot starve the core's timers.
        if deadline.is_some_and(|at| at <= now) {
            state.core.handle_timeout(now);
        }
    }
}

fn write(slot: &Mutex<Slot>, data: &[u8]) {
    if let Slot::Open(stream) = &*lock(slot) {
        let mut writer: &TcpStream = stream;
        if let Err(e) = writer.write_all(data) {
            tracing::debug!(error = %e, "write to broker failed");
            // Its reader sees the shutdown and reports the connection closed.
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn spawn_connection(
    conn: ConnId,
    address: BrokerAddress,
    setup_timeout: Duration,
    slot: Arc<Mutex<Slot>>,
    inputs: &Sender<Input>,
) {
    let report = inputs.clone();
    let spawned = thread::Builder::new()
        .name(format!("odradek-conn-{}", conn.0))
        .spawn(move || connection(conn, &address, setup_timeout, &slot, &report));
    if let Err(e) = spawned {
        let reason = format!("cannot start a connection thread: {e}");
        let _ = inputs.send(Input::Conn(conn, ConnEvent::Failed(reason)));
    }
}

/// One broker connection's thread: connect, then read until the socket
/// ends (the peer closed it, or the driver shut it down). Reports
/// everything to the driver.
fn connection(
    conn: ConnId,
    address: &BrokerAddress,
    setup_timeout: Duration,
    slot: &Mutex<Slot>,
    inputs: &Sender<Input>,
) {
    // A failed send means the driver has exited, after shutting every
    // socket in a slot down.
    let report = |event| inputs.send(Input::Conn(conn, event)).is_ok();
    let opened = connect(&address.host, address.port, setup_timeout).and_then(|stream| {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok((stream, writer))
    });
    let stream = match opened {
        Ok((stream, writer)) => {
            let mut slot = lock(slot);
            if matches!(*slot, Slot::Closed) {
                return;
            }
            *slot = Slot::Open(writer);
            stream
        }
        Err(e) => {
            report(ConnEvent::Failed(e.to_string()));
            return;
        }
    };
    if !report(ConnEvent::Connected) {
        return;
    }
    let mut buf = vec![0; 64 * 1024];
    loop {
        match (&stream).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !report(ConnEvent::Data(buf[..n].to_vec())) {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    report(ConnEvent::Closed);
}

/// Tries each address `host` resolves to, within `timeout` in all. The
/// core also times the setup out and closes the connection on its own.
fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now().checked_add(timeout);
    let mut last = io::Error::new(ErrorKind::NotFound, format!("{host} has no address"));
    for addr in (host, port).to_socket_addrs()? {
        let left = deadline.map_or(timeout, |at| at.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                "connection setup timed out",
            ));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}
