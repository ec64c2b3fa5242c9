//! A private Ethernet segment between test machines, made of QEMU's `dgram` netdevs and
//! a hub on the host's loopback: machine `i` sends its frames as UDP datagrams to the
//! hub's port `i`, and the hub sends each one on to every other machine's port, from
//! that machine's own hub port (the address its netdev names as the remote end). Nothing
//! leaves 127.0.0.1. A hub floods every frame, so the machines see one L2 network, as a
//! switch would give them (ARP, VXLAN, Swarm's gossip).

use crate::{HarnessError, Result};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One machine's end of the segment, for [`crate::VmConfig::lan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanPort {
    /// The machine's own UDP port on 127.0.0.1 (its netdev's `local`).
    pub local: u16,
    /// The hub's port for this machine (its netdev's `remote`).
    pub hub: u16,
    /// The NIC's MAC address.
    pub mac: String,
}

/// The hub; stops when dropped.
pub struct Hub {
    pub ports: Vec<LanPort>,
    stop: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> HarnessError + '_ {
    move |e| HarnessError::Io(what.into(), e)
}

impl Hub {
    /// A hub for `machines` machines, with MAC addresses `52:54:00:77:00:01`, `...:02`, ...
    pub fn start(machines: usize) -> Result<Hub> {
        let mut sockets = Vec::new();
        let mut ports = Vec::new();
        // The machines' ports are held until every port is chosen, so that no two are
        // the same (QEMU binds them once the hub is made).
        let mut held = Vec::new();
        for i in 0..machines {
            let s = UdpSocket::bind("127.0.0.1:0").map_err(io("127.0.0.1:0 (udp)"))?;
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .map_err(io("hub socket"))?;
            let hub = s.local_addr().map_err(io("hub socket"))?.port();
            let machine = UdpSocket::bind("127.0.0.1:0").map_err(io("127.0.0.1:0 (udp)"))?;
            ports.push(LanPort {
                local: machine.local_addr().map_err(io("machine port"))?.port(),
                hub,
                mac: format!("52:54:00:77:00:{:02x}", i + 1),
            });
            held.push(machine);
            sockets.push(Arc::new(s));
        }
        drop(held);
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for from in 0..machines {
            let sockets = sockets.clone();
            let ports = ports.clone();
            let stop = stop.clone();
            let frames = frames.clone();
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, _)) = sockets[from].recv_from(&mut buf) else {
                        continue;
                    };
                    frames.fetch_add(1, Ordering::Relaxed);
                    for (to, port) in ports.iter().enumerate() {
                        if to != from {
                            // A machine that is down drops it, as a cable pulled would.
                            let _ = sockets[to].send_to(&buf[..n], ("127.0.0.1", port.local));
                        }
                    }
                }
            }));
        }
        Ok(Hub {
            ports,
            stop,
            frames,
            threads,
        })
    }

    /// How many frames the machines have sent so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_from_one_machine_reaches_every_other_from_its_own_hub_port() {
        let hub = Hub::start(3).expect("hub");
        let machines: Vec<UdpSocket> = hub
            .ports
            .iter()
            .map(|p| {
                let s = UdpSocket::bind(("127.0.0.1", p.local)).expect("machine port");
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                s
            })
            .collect();
        machines[0]
            .send_to(b"frame", ("127.0.0.1", hub.ports[0].hub))
            .expect("send");
        for (i, m) in machines.iter().enumerate().skip(1) {
            let mut buf = [0u8; 16];
            let (n, from) = m.recv_from(&mut buf).expect("a frame arrives");
            assert_eq!(&buf[..n], b"frame");
            assert_eq!(
                from.port(),
                hub.ports[i].hub,
                "sent from machine {i}'s hub port"
            );
        }
        machines[0]
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        assert!(
            machines[0].recv_from(&mut buf).is_err(),
            "the sender gets no copy"
        );
        assert_eq!(hub.frames(), 1);
        assert_ne!(hub.ports[0].mac, hub.ports[1].mac);
    }
}
