//! The background task: moves bytes between sockets and the core, sleeps
//! until the core's deadline, and wakes waiters when something happened.
//! It makes no decision about Kafka; the core does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use odradek_core::{ConnId, Io};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// State shared by the user-facing handle and the driver task.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Something changed that a waiting call may care about.
    pub(crate) changed: Notify,
    /// Notified when a command changed the core.
    pub(crate) driver_wakeup: Notify,
    pub(crate) listener_thread: ListenerThread,
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
        lock(&self.state)
    }

    /// A command changed the core: the driver must drain its outputs.
    pub(crate) fn wake_driver(&self) {
        self.driver_wakeup.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The core never panics on input; a poisoned lock only means a panic
    // elsewhere while it was held, and the state is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a connection task reports.
enum ConnEvent {
    Connected,
    Failed(String),
    Data(Bytes),
    Closed,
}

struct ConnHandle {
    outbound: mpsc::UnboundedSender<Bytes>,
    task: JoinHandle<()>,
}

/// Runs until the core is closed and its last outputs are drained.
pub(crate) async fn run(shared: Arc<Shared>) {
    let (inbound_tx, mut inbound) = mpsc::unbounded_channel::<(ConnId, ConnEvent)>();
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
                    let (outbound, outbound_rx) = mpsc::unbounded_channel();
                    let task = tokio::spawn(connection(
                        conn,
                        address.host,
                        address.port,
                        outbound_rx,
                        inbound_tx.clone(),
                    ));
                    conns.insert(conn, ConnHandle { outbound, task });
                }
                Io::Send { conn, data } => {
                    if let Some(handle) = conns.get(&conn) {
                        // A send to a finished task fails; the task already
                        // reported Closed, which the core hears next.
                        let _ = handle.outbound.send(data);
                    }
                }
                Io::Close { conn } => {
                    if let Some(handle) = conns.remove(&conn) {
                        handle.task.abort();
                    }
                }
            }
        }
        if drained.wake_waiters {
            shared.changed.notify_waiters();
        }
        if drained.closed {
            for (_, handle) in conns.drain() {
                handle.task.abort();
            }
            shared.lock().set_finished();
            shared.changed.notify_waiters();
            return;
        }
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some((conn, event)) = inbound.recv() => {
                let mut state = shared.lock();
                let now = Instant::now();
                match event {
                    ConnEvent::Connected => state.core.handle_connected(conn, now),
                    ConnEvent::Failed(reason) => {
                        conns.remove(&conn);
                        state.core.handle_connect_failed(conn, &reason, now);
                    }
                    ConnEvent::Data(data) => state.core.handle_received(conn, &data, now),
                    ConnEvent::Closed => {
                        conns.remove(&conn);
                        state.core.handle_disconnected(conn, now);
                    }
                }
            }
            () = shared.driver_wakeup.notified() => {}
            () = sleep => {
                shared.lock().core.handle_timeout(Instant::now());
            }
        }
    }
}

/// One broker connection: connect, then copy bytes both ways until either
/// side ends. Reports everything to the driver.
async fn connection(
    conn: ConnId,
    host: String,
    port: u16,
    mut outbound: mpsc::UnboundedReceiver<Bytes>,
    inbound: mpsc::UnboundedSender<(ConnId, ConnEvent)>,
) {
    // The core bounds how long this may take (connection setup timeout)
    // and closes the connection if it runs out.
    let mut stream = match TcpStream::connect((host.as_str(), port)).await {
        Ok(stream) => stream,
        Err(e) => {
            let _ = inbound.send((conn, ConnEvent::Failed(e.to_string())));
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    if inbound.send((conn, ConnEvent::Connected)).is_err() {
        return;
    }
    let (mut reader, mut writer) = stream.split();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        tokio::select! {
            data = outbound.recv() => match data {
                Some(data) => {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
                None => return,
            },
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let data = buf.split().freeze();
                    if inbound.send((conn, ConnEvent::Data(data))).is_err() {
                        return;
                    }
                    if buf.capacity() < 16 * 1024 {
                        buf.reserve(64 * 1024);
                    }
                }
            },
        }
    }
    let _ = inbound.send((conn, ConnEvent::Closed));
}
