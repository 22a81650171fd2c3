//! Caps on proxied requests in flight: per workspace and for the instance.
//!
//! Each request takes a permit from its workspace's semaphore, then one from
//! the instance's, with `try_acquire` only: over a cap the request is answered
//! at once (429 / 503), never queued. The permits live in the response: a
//! stream holds them until it ends or the client goes away.
//!
//! Not tower's `ConcurrencyLimitLayer`: its permit is released when the
//! handler returns the response head, so a stream of several minutes would
//! not count against it. tokio's semaphores, held by the body, do.
//!
//! The per-workspace map holds only workspaces with a request in flight: the
//! last permit of a workspace to go removes its entry, so the map never holds
//! more entries than there are requests in flight.

use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct InflightLimits {
    overall: Arc<Semaphore>,
    per_workspace: Arc<DashMap<String, Arc<Semaphore>>>,
    per_workspace_max: usize,
}

/// Which cap a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverCap {
    Workspace,
    Overall,
}

/// A request's place under both caps, released on drop.
pub struct InflightPermit {
    workspace: Option<OwnedSemaphorePermit>,
    _overall: OwnedSemaphorePermit,
    id: String,
    map: Arc<DashMap<String, Arc<Semaphore>>>,
}

impl InflightLimits {
    pub fn new(overall: u32, per_workspace: u32) -> Self {
        Self {
            overall: Arc::new(Semaphore::new(overall as usize)),
            per_workspace: Arc::default(),
            per_workspace_max: per_workspace as usize,
        }
    }

    pub fn try_acquire(&self, workspace: &str) -> Result<InflightPermit, OverCap> {
        // Cloned under the entry's shard lock, so the removal in `Drop` (under
        // the same lock) sees this clone and leaves the entry in place.
        let semaphore = self
            .per_workspace
            .entry(workspace.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_workspace_max)))
            .clone();
        let cleanup = |semaphore: Arc<Semaphore>| {
            drop(semaphore);
            remove_if_idle(&self.per_workspace, workspace);
        };
        let own = match semaphore.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                cleanup(semaphore);
                return Err(OverCap::Workspace);
            }
        };
        let overall = match self.overall.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                drop(own);
                cleanup(semaphore);
                return Err(OverCap::Overall);
            }
        };
        drop(semaphore);
        Ok(InflightPermit {
            workspace: Some(own),
            _overall: overall,
            id: workspace.to_string(),
            map: self.per_workspace.clone(),
        })
    }

    /// Workspaces with requests in flight (tests check the map shrinks back).
    pub fn tracked_workspaces(&self) -> usize {
        self.per_workspace.len()
    }
}

/// Removes the workspace's entry when nothing but the map holds its semaphore
/// (no permit out, nobody between lookup and acquire).
fn remove_if_idle(map: &DashMap<String, Arc<Semaphore>>, workspace: &str) {
    map.remove_if(workspace, |_, semaphore| Arc::strong_count(semaphore) == 1);
}

impl Drop for InflightPermit {
    fn drop(&mut self) {
        // The permit holds its semaphore: release it first, then look.
        self.workspace.take();
        remove_if_idle(&self.map, &self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_refuses_at_once_and_frees_on_drop() {
        let limits = InflightLimits::new(3, 2);
        let a1 = limits.try_acquire("a").unwrap();
        let a2 = limits.try_acquire("a").unwrap();
        assert_eq!(limits.try_acquire("a").err(), Some(OverCap::Workspace));
        let b1 = limits.try_acquire("b").unwrap();
        assert_eq!(limits.try_acquire("c").err(), Some(OverCap::Overall));
        assert_eq!(
            limits.tracked_workspaces(),
            2,
            "a refused workspace leaves no entry"
        );
        drop(a1);
        let a3 = limits.try_acquire("a").unwrap();
        drop((a2, a3, b1));
        assert_eq!(
            limits.tracked_workspaces(),
            0,
            "idle workspaces are forgotten"
        );
        assert!(limits.try_acquire("c").is_ok());
    }

    #[test]
    fn the_map_does_not_grow_with_workspaces_seen() {
        let limits = InflightLimits::new(10, 1);
        for i in 0..10_000 {
            let permit = limits.try_acquire(&format!("ws-{i}")).unwrap();
            assert_eq!(limits.tracked_workspaces(), 1);
            drop(permit);
        }
        assert_eq!(limits.tracked_workspaces(), 0);
    }
}
