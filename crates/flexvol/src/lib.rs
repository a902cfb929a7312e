//! keyvol-flexvol: the FlexVolume driver `azure/kv`, a drop-in for the Key Vault FlexVolume.
//!
//! Kubelet runs `<plugin dir>/azure~kv/kv <command> …` and reads one JSON object back. Start with
//! [`driver::run`], which takes the call's arguments and returns that object: [`call`] parses
//! argv into a typed call, [`options`] validates the original driver's volume options, [`request`]
//! turns them into the Azure provider's request (the same provider code as the CSI path),
//! [`original`] writes the original driver's file formats, and [`status`] is the JSON reply.
//! [`install`] copies the driver into kubelet's plugin directory. docs/flexvolume.md has the
//! contract, every option and the differences from the original.

pub mod call;
pub mod driver;
pub mod install;
pub mod options;
pub mod original;
pub mod request;
pub mod status;

pub use driver::run;
pub use request::NodeConfig;
pub use status::DriverStatus;
