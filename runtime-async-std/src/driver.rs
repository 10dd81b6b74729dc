//! The driver thread: moves bytes between sockets and the core, sleeps
//! until the core's deadline, and wakes waiters when something happened.
//! It makes no decision about Kafka; the core does.
//!
//! It runs on its own thread under `async_io::block_on`, so the consumer
//! works the same whichever executor (if any) the application uses. Each
//! connection is a task on that thread's `LocalExecutor`; dropping the task
//! closes the socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_executor::{LocalExecutor, Task};
use async_net::TcpStream;
use bytes::Bytes;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use odradek_core::{ConnId, Io};

/// State shared by the user-facing handle and the driver thread.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Something changed that a waiting call may care about.
    pub(crate) changed: event_listener::Event,
    /// A command changed the core: the driver must drain its outputs. A
    /// channel of one so that a signal sent while the driver is busy is
    /// kept, not lost, and many signals cost one wake-up.
    wake_tx: async_channel::Sender<()>,
    wake_rx: async_channel::Receiver<()>,
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
    pub(crate) fn new(core: odradek_core::Consumer) -> Shared {
        let (wake_tx, wake_rx) = async_channel::bounded(1);
        let listener_thread = listener_thread();
        let mut session = State::new(core);
        session.set_listener_scope(listener_thread.scope());
        Shared {
            state: Mutex::new(session),
            changed: event_listener::Event::new(),
            wake_tx,
            wake_rx,
            listener_thread,
        }
    }

    /// The time commands run at: the core reads no clock.
    pub(crate) fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.listener_thread.check();
        lock(&self.state)
    }

    /// Asks the driver to drain the core. Never blocks.
    pub(crate) fn wake_driver(&self) {
        // Full means a wake-up is already pending, which is all we need.
        let _ = self.wake_tx.try_send(());
    }

    fn notify_waiters(&self) {
        self.changed.notify(usize::MAX);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The core never panics on input; a poisoned lock only means a panic
    // elsewhere while it was held, and the state is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the driver thread.
pub(crate) fn spawn(shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("odradek-driver".into())
        .spawn(move || {
            // Waiters must learn that the driver stopped, even by a panic.
            let _finish = Finish(shared.clone());
            let executor = LocalExecutor::new();
            async_io::block_on(executor.run(run(&shared, &executor)));
        })
        .map(drop)
}

/// Marks the driver finished when the thread ends, however it ends.
struct Finish(Arc<Shared>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.lock().set_finished();
        self.0.notify_waiters();
    }
}

/// What a connection task reports.
enum ConnEvent {
    Connected,
    Failed(String),
    Data(Vec<u8>),
    Closed,
}

/// What woke the driver.
enum Wake {
    Conn(ConnId, ConnEvent),
    Command,
    Timeout,
}

struct ConnHandle {
    outbound: async_channel::Sender<Bytes>,
    /// Dropping it cancels the task and closes the socket.
    _task: Task<()>,
}

/// Runs until the core is closed and its last outputs are drained.
async fn run(shared: &Shared, executor: &LocalExecutor<'_>) {
    let (inbound_tx, inbound) = async_channel::unbounded::<(ConnId, ConnEvent)>();
    let mut conns: HashMap<ConnId, ConnHandle> = HashMap::new();
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
                    let (outbound, outbound_rx) = async_channel::unbounded();
                    let task = executor.spawn(connection(
                        conn,
                        address.host,
                        address.port,
                        outbound_rx,
                        inbound_tx.clone(),
                    ));
                    conns.insert(
                        conn,
                        ConnHandle {
                            outbound,
                            _task: task,
                        },
                    );
                }
                Io::Send { conn, data } => {
                    if let Some(handle) = conns.get(&conn) {
                        // A send to a finished task fails; the task already
                        // reported Closed, which the core hears next.
                        let _ = handle.outbound.try_send(data);
                    }
                }
                Io::Close { conn } => {
                    conns.remove(&conn);
                }
            }
        }
        if drained.wake_waiters {
            shared.notify_waiters();
        }
        if drained.closed {
            // Dropping the handles cancels the tasks and closes the sockets;
            // `Finish` tells the waiters once the thread ends.
            return;
        }
        let conn_event = async {
            match inbound.recv().await {
                Ok((conn, event)) => Wake::Conn(conn, event),
                // Cannot happen: this function holds a sender.
                Err(_) => future::pending().await,
            }
        };
        let command = async {
            // Cannot fail: `shared` holds a sender.
            let _ = shared.wake_rx.recv().await;
            Wake::Command
        };
        let timer = async {
            match deadline {
                Some(at) => async_io::Timer::at(at).await,
                None => future::pending().await,
            };
            Wake::Timeout
        };
        let wake = future::or(conn_event, future::or(command, timer)).await;
        let mut state = shared.lock();
        let now = Instant::now();
        match wake {
            Wake::Conn(conn, ConnEvent::Connected) => state.core.handle_connected(conn, now),
            Wake::Conn(conn, ConnEvent::Failed(reason)) => {
                conns.remove(&conn);
                state.core.handle_connect_failed(conn, &reason, now);
            }
            Wake::Conn(conn, ConnEvent::Data(data)) => state.core.handle_received(conn, &data, now),
            Wake::Conn(conn, ConnEvent::Closed) => {
                conns.remove(&conn);
                state.core.handle_disconnected(conn, now);
            }
            Wake::Command | Wake::Timeout => {}
        }
        // Checked here rather than only on `Wake::Timeout`, which a steady
        // flow of inbound data (polled first) could starve.
        if deadline.is_some_and(|at| at <= now) {
            state.core.handle_timeout(now);
        }
    }
}

/// One broker connection: connect, then copy bytes both ways until either
/// side ends. Reports everything to the driver.
async fn connection(
    conn: ConnId,
    host: String,
    port: u16,
    outbound: async_channel::Receiver<Bytes>,
    inbound: async_channel::Sender<(ConnId, ConnEvent)>,
) {
    // The core bounds how long this may take (connection setup timeout)
    // and closes the connection, cancelling this task, if it runs out.
    let stream = match TcpStream::connect((host.as_str(), port)).await {
        Ok(stream) => stream,
        Err(e) => {
            let _ = inbound.try_send((conn, ConnEvent::Failed(e.to_string())));
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    if inbound.try_send((conn, ConnEvent::Connected)).is_err() {
        return;
    }
    let mut reader = stream.clone();
    let mut writer = stream;
    let read = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if inbound
                        .try_send((conn, ConnEvent::Data(buf[..n].to_vec())))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let write = async {
        // Ends when the driver drops the sender (it closed the connection
        // and will drop this task too) or when a write fails.
        while let Ok(data) = outbound.recv().await {
            if writer.write_all(&data).await.is_err() {
                return;
            }
        }
    };
    future::or(read, write).await;
    let _ = inbound.try_send((conn, ConnEvent::Closed));
}
