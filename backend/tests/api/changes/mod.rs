//! The change log (`src/changes/`): the change feed, the live event stream, and the stream's
//! fan-out across instances.

mod events;
mod feed;
mod instances;
