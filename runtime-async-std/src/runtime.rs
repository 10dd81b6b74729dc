//! The async-io binding: the driver runs on its own thread under
//! `async_io::block_on`, so the consumer works the same whichever executor
//! (if any) the application uses. Each connection is a task on that
//! thread's executor; dropping the task closes the socket.

use std::sync::Arc;
use std::time::Instant;

use async_executor::{Executor, Task};
use async_net::TcpStream;
use bytes::Bytes;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use odradek_client::{AsyncRuntime, Connection, Driver, Link, Runtime};
use odradek_core::{Error, RuntimeFailure};

/// The async-io runtime a consumer runs on: a driver thread with its own
/// executor for the connection tasks. Timers and sockets use async-io's
/// reactor, so the consumer's futures need no particular executor.
#[derive(Clone)]
pub struct AsyncIoRuntime {
    /// Runs only on the driver thread.
    executor: Arc<Executor<'static>>,
}

impl std::fmt::Debug for AsyncIoRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncIoRuntime").finish_non_exhaustive()
    }
}

impl Runtime for AsyncIoRuntime {
    type Conn = AsyncIoConn;

    fn start() -> Result<Self, Error> {
        Ok(AsyncIoRuntime {
            executor: Arc::new(Executor::new()),
        })
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn spawn_driver(&self, driver: Driver<Self>) -> Result<(), Error> {
        let executor = self.executor.clone();
        std::thread::Builder::new()
            .name("odradek-driver".into())
            .spawn(move || {
                async_io::block_on(executor.run(driver.run()));
                // The driver dropped its connection tasks: a dropped task
                // is only cancelled (its socket closed) when the executor
                // runs it once more. The consumer still holds the executor,
                // so finish them here.
                while executor.try_tick() {}
            })
            .map(drop)
            .map_err(|e| Error::Runtime(RuntimeFailure::DriverNotStarted(e.to_string())))
    }

    fn connect(&self, link: Link) -> AsyncIoConn {
        let (outbound, outbound_rx) = async_channel::unbounded();
        let task = self.executor.spawn(connection(link, outbound_rx));
        AsyncIoConn {
            outbound,
            _task: task,
        }
    }
}

impl AsyncRuntime for AsyncIoRuntime {
    async fn sleep_until(&self, deadline: Instant) {
        async_io::Timer::at(deadline).await;
    }
}

/// A connection task; dropping it cancels the task and closes the socket.
#[derive(Debug)]
pub struct AsyncIoConn {
    outbound: async_channel::Sender<Bytes>,
    _task: Task<()>,
}

impl Connection for AsyncIoConn {
    fn send(&mut self, data: Bytes) {
        // A send to a finished task fails; the task already reported the
        // connection closed, which the driver hears next.
        let _ = self.outbound.try_send(data);
    }
}

/// One broker connection: connect, then copy bytes both ways until either
/// side ends, reporting everything to the driver.
async fn connection(link: Link, outbound: async_channel::Receiver<Bytes>) {
    // The core bounds how long this may take (connection setup timeout)
    // and closes the connection, cancelling this task, if it runs out.
    let address = link.address();
    let stream = match TcpStream::connect((address.host.as_str(), address.port)).await {
        Ok(stream) => stream,
        Err(e) => return link.failed(e.to_string()),
    };
    let _ = stream.set_nodelay(true);
    if link.keepalive() {
        if let Err(e) = socket2::SockRef::from(&stream).set_keepalive(true) {
            return link.failed(format!("cannot turn TCP keepalive on: {e}"));
        }
    }
    if !link.connected() {
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
                    if !link.received(Bytes::copy_from_slice(&buf[..n])) {
                        return;
                    }
                }
            }
        }
    };
    let write = async {
        // Ends when the driver drops the sender (it closed the connection
        // and drops this task too) or when a write fails.
        while let Ok(data) = outbound.recv().await {
            if writer.write_all(&data).await.is_err() {
                return;
            }
        }
    };
    future::or(read, write).await;
    link.closed();
}
