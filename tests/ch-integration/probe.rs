// SPDX-License-Identifier: Apache-2.0
//
// The host side of Cloud Hypervisor's test contract, through test_infra's
// own functions (built against a CH checkout by
// scripts/ch-integration/boot-workload.sh; not part of this workspace):
//
//   probe wait-boot PORT GUEST_IP TIMEOUT_S
//       GuestNetworkConfig::wait_vm_boot_from: listen on 0.0.0.0:PORT and
//       wait for the guest's connection from GUEST_IP (the `booted`
//       notification); prints the time it took.
//   probe ssh GUEST_IP COMMAND
//       ssh_command_ip (libssh2, user cloud, password cloud123, the tests'
//       retries): prints the command's output; exit 1 on failure.
//   probe scp GUEST_IP LOCAL REMOTE
//       scp_to_guest (libssh2 scp: the guest runs `scp -t`).

use std::process::exit;
use std::time::Instant;

use std::path::Path;

use test_infra::{
    DEFAULT_SSH_RETRIES, DEFAULT_SSH_TIMEOUT, GuestNetworkConfig, scp_to_guest, ssh_command_ip,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("wait-boot") if args.len() == 5 => {
            let port: u16 = args[2].parse().expect("PORT");
            let timeout: u32 = args[4].parse().expect("TIMEOUT_S");
            let start = Instant::now();
            match GuestNetworkConfig::wait_vm_boot_from(port, &args[3], timeout) {
                Ok(()) => println!("booted after {} ms", start.elapsed().as_millis()),
                Err(e) => {
                    eprintln!("wait_vm_boot failed after {} ms: {e:?}", start.elapsed().as_millis());
                    exit(1);
                }
            }
        }
        Some("ssh") if args.len() == 4 => {
            match ssh_command_ip(&args[3], &args[2], DEFAULT_SSH_RETRIES, DEFAULT_SSH_TIMEOUT) {
                Ok(out) => print!("{out}"),
                Err(e) => {
                    eprintln!("ssh_command failed: {e:?}");
                    exit(1);
                }
            }
        }
        Some("scp") if args.len() == 5 => {
            if let Err(e) = scp_to_guest(
                Path::new(&args[3]),
                Path::new(&args[4]),
                &args[2],
                DEFAULT_SSH_RETRIES,
                DEFAULT_SSH_TIMEOUT,
            ) {
                eprintln!("scp_to_guest failed: {e:?}");
                exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: probe wait-boot PORT GUEST_IP TIMEOUT_S | probe ssh GUEST_IP COMMAND \
                 | probe scp GUEST_IP LOCAL REMOTE"
            );
            exit(2);
        }
    }
}
