//! Sluice runtime: packets, match-action tables, control-plane commands,
//! capture I/O and the helpers the datapath shares with the compiler.

pub mod afpacket;
pub mod afxdp;
pub mod bits;
pub mod checksum;
pub mod command;
pub mod control;
pub mod crypto;
pub mod datapath;
pub mod hash;
pub mod jitview;
pub mod live;
pub mod packet;
pub mod pcap;
pub mod ports;
pub mod stats;
pub mod switch;
pub mod table;
pub mod value;
pub mod workers;
