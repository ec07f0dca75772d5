//! Shared helpers of the root-only end-to-end tests: namespaces and veth
//! pairs the test creates (and always removes), traffic generated from
//! threads inside those namespaces, an AF_PACKET capture as ground truth, and
//! the flowctl binary run against a private pin directory.
#![allow(dead_code)]

pub mod agent;
pub mod blocker;
pub mod capture;
pub mod cgroup;
pub mod collect;
pub mod collectors;
pub mod flowctl_cli;
pub mod kernel;
pub mod load;
pub mod netns;
pub mod traffic;
pub mod tun;
