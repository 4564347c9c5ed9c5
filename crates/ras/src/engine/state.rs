// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The engine's state across a guest reboot ([`RasEngine::reset`]: the
//! poisoned granules are handed back for repair) and across a snapshot or
//! a migration ([`RasEngine::snapshot`], [`RasEngine::restore`]: the
//! configuration, the poison list, and the records the guest had not
//! acknowledged yet).

use serde::{Deserialize, Serialize};
use vm_memory::{Bytes, GuestMemoryError};

use super::{EngineError, RasEngine};
use crate::config::RasConfig;
use crate::cper::StatusBlock;
use crate::error_source::{ErrorSourceError, SourceId};
use crate::event::RasEvent;
use crate::granule::GpaGranule;
use crate::poison::{PoisonList, PoisonRegistry};

/// What [`RasEngine::reset`] hands back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reset {
    /// The poisoned granules the VMM must repair before the guest runs
    /// again (replace anonymous memory, punch file-backed memory out).
    pub repair: Vec<GpaGranule>,
    /// Events to publish.
    pub events: Vec<RasEvent>,
}

/// The engine state a snapshot or a migration carries: the configuration
/// (checked on restore) and the poison list. Records queued behind an
/// unacknowledged one are not kept (the record in flight is in guest
/// memory, which the snapshot holds); the storm history restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RasSnapshot {
    /// Configuration of the engine that took the snapshot.
    pub config: RasConfig,
    /// Poisoned memory.
    pub poison: PoisonRegistry,
}

impl RasEngine {
    /// Guest reset (the VM is shut down, its memory still mapped): empties
    /// the poison registry and returns its granules for repair,
    /// re-initializes the error-source region, forgets the storm history.
    pub fn reset<M>(&mut self, mem: &M) -> Result<Reset, EngineError>
    where
        M: Bytes<vm_memory::GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        let repair = self.poison.take_all();
        let events = repair
            .iter()
            .map(|g| RasEvent::PoisonRepaired { granule: *g })
            .collect();
        self.storm.clear();
        self.announce.clear();
        self.init(mem)?;
        Ok(Reset { repair, events })
    }

    /// The state to save in a snapshot.
    pub fn snapshot(&self) -> RasSnapshot {
        RasSnapshot {
            config: self.config,
            poison: self.poison.clone(),
        }
    }

    /// Restores a snapshot taken by an engine with the same configuration,
    /// on the restored guest memory (which holds the error-source region).
    /// Records the guest had not acknowledged (ack register 0 and a valid
    /// status block) are delivered again after the region is
    /// re-initialized; anything else in the region is reset. Replaces
    /// [`RasEngine::init`].
    pub fn restore<M>(&mut self, snapshot: RasSnapshot, mem: &M) -> Result<(), EngineError>
    where
        M: Bytes<vm_memory::GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        if snapshot.config != self.config {
            return Err(EngineError::ConfigMismatch {
                snapshot: Box::new(snapshot.config),
                running: Box::new(self.config),
            });
        }
        let poison = PoisonRegistry::try_from(poison_list(snapshot.poison, self.config))?;
        let in_flight = self.in_flight_records(mem)?;
        self.sources.init(mem)?;
        for (source, block) in in_flight {
            self.sources.submit(mem, source, &block)?;
        }
        self.poison = poison;
        self.storm.clear();
        self.announce.clear();
        self.initialized = true;
        Ok(())
    }

    /// Valid records written but not acknowledged, per source. The block
    /// contents are guest-writable: they are decoded and re-encoded, never
    /// used as addresses.
    fn in_flight_records<M>(&self, mem: &M) -> Result<Vec<(SourceId, StatusBlock)>, EngineError>
    where
        M: Bytes<vm_memory::GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        let layout = *self.sources.layout();
        let mut buf = vec![0u8; layout.block_len() as usize];
        let mut out = Vec::new();
        for s in layout.sources() {
            if self.sources.is_free(mem, s)? {
                continue;
            }
            let addr = layout.block(s)?;
            mem.read_slice(&mut buf, addr)
                .map_err(|source| ErrorSourceError::Memory {
                    addr: addr.0,
                    source,
                })?;
            if let Ok(block) = StatusBlock::decode(&buf)
                && !block.entries.is_empty()
            {
                out.push((s, block));
            }
        }
        Ok(out)
    }
}

/// The poison list restored with this configuration's bound (a snapshot
/// cannot raise it).
fn poison_list(poison: PoisonRegistry, config: RasConfig) -> PoisonList {
    let mut list = PoisonList::from(poison);
    list.limit = config.max_poisoned as usize;
    list
}
