//! Integration tests: the real `modproxy` binary between the real `go`
//! command and the Go team's reference proxy and checksum DB, with the
//! tests' own fault server in between where a test needs to count or break
//! upstream traffic. Run them with `./scripts/test`.

mod fault;
mod util;

mod address_policy;
mod bodies;
mod coalescing;
mod config;
mod conformance;
mod connections;
mod crash;
mod dashboard;
mod direct;
mod direct_network;
mod disk_full;
mod doctor;
mod faults;
mod go_client;
mod monitoring;
mod operate;
mod prefetch;
mod protocol;
mod scale;
mod services;
mod trust;
mod warm;
