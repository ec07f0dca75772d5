//! A tcx program that ends processing of every packet (TC_ACT_OK), attached
//! before anything else on a hook: what a firewall or CNI does. Compiled
//! from `bpf/test/pass_ok.bpf.c` with clang, loaded with aya, its link
//! pinned so that it stays attached until the value is dropped.

use std::{path::PathBuf, process::Command};

use aya::programs::{links::FdLink, tc::TcAttachOptions, LinkOrder, SchedClassifier, TcAttachType};

use super::netns::in_netns;

/// The attached program; dropping it detaches it.
pub struct Blocker {
    pin: PathBuf,
}

impl Blocker {
    /// Attaches the program to the egress of `dev` in namespace `ns`, first
    /// in the tcx chain.
    pub fn attach_egress(ns: &str, dev: &str, pin: PathBuf) -> Self {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf/test/pass_ok.bpf.c");
        let obj = std::env::temp_dir().join(format!("flowctl-pass-ok-{}.o", std::process::id()));
        let status = Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf", "-c", "-I/usr/include/x86_64-linux-gnu"])
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .expect("clang");
        assert!(status.success(), "compiling {}", src.display());
        let (dev, link_pin) = (dev.to_string(), pin.clone());
        in_netns(ns, move || {
            let mut ebpf = aya::Ebpf::load_file(&obj).unwrap();
            std::fs::remove_file(&obj).ok();
            let prog: &mut SchedClassifier = ebpf.program_mut("pass_ok").unwrap().try_into().unwrap();
            prog.load().unwrap();
            let id = prog
                .attach_with_options(
                    &dev,
                    TcAttachType::Egress,
                    TcAttachOptions::TcxOrder(LinkOrder::first()),
                )
                .unwrap();
            let link = FdLink::try_from(prog.take_link(id).unwrap()).unwrap();
            link.pin(&link_pin).unwrap();
        })
        .join()
        .unwrap();
        Self { pin }
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pin);
    }
}
