//! Attacks a hostile tenant (or an unlucky operator) would try, each performed
//! against a real server and seen refused. One binary, one module per area,
//! so the suite links once. `docs/SECURITY.md` maps each attack to what it
//! guarantees.

#[path = "../common/mod.rs"]
mod common;

mod caps;
mod credentials;
mod instances;
mod money;
mod proxy;
mod retries;
mod sessions;
