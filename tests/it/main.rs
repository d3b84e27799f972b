//! Integration tests of the `sluice` command and the programs under programs/, in one binary.

mod captures;
mod cli;
mod ctl;
mod datapath;
mod differential;
mod emit;
mod errors;
mod features;
mod fleet;
mod fuzz;
mod golden;
mod live;
mod robust;
mod scale;
mod secure;
mod serve;
mod support;
mod tidy;
mod vnet;
mod workers;
