//! Tiles of the checksum database's Merkle tree, for proofs.
//!
//! The proof code (`tlog_tiles`, a port of Go's `tlog`) reads tiles
//! synchronously; tiles come from the store or the network asynchronously.
//! [`Tiles::run`] bridges the two: it runs the proof against the tiles at
//! hand, collects the ones it missed, fetches them, and runs it again.
//! Tiles are stored only once a proof has authenticated them against a
//! signed tree head (`save_tiles`), like the go command's own cache.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use tlog_tiles::{Error as TlogError, Tile, TileHashReader, TileReader};

use super::record::Tree;
use super::{SumDb, SumDbError};
use crate::error::chain;

use crate::sync::Locked;

/// Tile height of the Go checksum database.
pub const HEIGHT: u8 = 8;
/// Passes of run → fetch missing tiles → run again.
const MAX_PASSES: usize = 6;

/// The tiles at hand for one proof, and what it missed or authenticated.
#[derive(Default)]
struct Reader {
    known: HashMap<Tile, Vec<u8>>,
    missing: Mutex<Vec<Tile>>,
    saved: Mutex<Vec<(Tile, Vec<u8>)>>,
}

impl TileReader for Reader {
    fn height(&self) -> u8 {
        HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        let mut out = Vec::with_capacity(tiles.len());
        let mut missing = self.missing.locked();
        for tile in tiles {
            match self.known.get(tile) {
                Some(data) => out.push(data.clone()),
                None => missing.push(*tile),
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(TlogError::InvalidInput("tiles not fetched yet".into()))
        }
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        let mut saved = self.saved.locked();
        saved.extend(tiles.iter().copied().zip(data.iter().cloned()));
    }
}

/// Tiles a proof authenticated, to be stored.
pub type Saved = Vec<(Tile, Vec<u8>)>;

/// Runs tile-based proofs for one database.
pub struct Tiles;

impl Tiles {
    /// Runs `op` against the tiles of `tree`, fetching what it needs.
    /// Returns its result and the tiles the proof authenticated against
    /// `tree`, for the caller to store once its own check has passed.
    pub async fn run<T>(
        db: &SumDb,
        tree: Tree,
        op: impl Fn(&TileHashReader<'_>) -> Result<T, TlogError>,
    ) -> Result<(T, Saved), SumDbError> {
        let mut known: HashMap<Tile, Vec<u8>> = HashMap::new();
        // Tiles that came from the network: only these need saving (the
        // proof hands back every tile it used).
        let mut fetched: HashSet<Tile> = HashSet::new();
        for _ in 0..MAX_PASSES {
            let reader = Reader {
                known: std::mem::take(&mut known),
                ..Reader::default()
            };
            let result = {
                let thr = TileHashReader::new(tree.n, tree.hash, &reader);
                op(&thr)
            };
            let Reader {
                known: k,
                missing,
                saved,
            } = reader;
            known = k;
            let missing = crate::sync::into_inner(missing);
            let saved = crate::sync::into_inner(saved);
            match result {
                Ok(value) => {
                    let saved = saved
                        .into_iter()
                        .filter(|(tile, _)| fetched.contains(tile))
                        .collect();
                    return Ok((value, saved));
                }
                Err(_) if !missing.is_empty() => {
                    for tile in missing {
                        if let std::collections::hash_map::Entry::Vacant(slot) = known.entry(tile) {
                            // A missing tile is a broken proof, not a
                            // missing module: never let it become a 404.
                            let (data, stored) = db.tile(tile).await.map_err(|e| {
                                SumDbError::Proof(format!("reading {}: {}", tile.path(), chain(&e)))
                            })?;
                            if !stored {
                                fetched.insert(tile);
                            }
                            slot.insert(data.to_vec());
                        }
                    }
                }
                Err(e) => return Err(SumDbError::Proof(e.to_string())),
            }
        }
        Err(SumDbError::Proof("too many rounds of tile fetches".into()))
    }
}

/// The store key of a tile.
pub fn tile_key(db_name: &str, tile: &Tile) -> String {
    format!("sumdb/{db_name}/{}", tile.path())
}

/// The full tile a partial tile is a prefix of.
pub fn full_tile(tile: &Tile) -> Tile {
    Tile::new(
        tile.height(),
        tile.level(),
        tile.level_index(),
        1 << tile.height(),
        tile.is_data(),
    )
}

/// The first `width` hashes of a full tile's data.
pub fn prefix(data: &Bytes, width: u32) -> Option<Bytes> {
    let len = width as usize * tlog_tiles::HASH_SIZE;
    (data.len() >= len).then(|| data.slice(..len))
}
