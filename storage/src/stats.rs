//! RocksDB sizes for metrics: per column family (SST files, memtables, estimated keys,
//! compaction backlog) and the shared block cache, read from RocksDB's properties.

use crate::{Storage, Table};

/// One column family's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    /// The table (column family).
    pub table: Table,
    /// Live SST files, bytes (`rocksdb.live-sst-files-size`).
    pub sst_bytes: u64,
    /// Memtables, bytes (`rocksdb.cur-size-all-mem-tables`).
    pub memtable_bytes: u64,
    /// Estimated number of keys (`rocksdb.estimate-num-keys`).
    pub estimated_keys: u64,
    /// Bytes compaction still has to rewrite (`rocksdb.estimate-pending-compaction-bytes`).
    pub pending_compaction_bytes: u64,
}

/// The whole database's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStats {
    /// Per column family.
    pub tables: Vec<TableStats>,
    /// Block cache in use, bytes (`rocksdb.block-cache-usage`, shared by every family).
    pub block_cache_bytes: u64,
    /// Compactions running now (`rocksdb.num-running-compactions`).
    pub running_compactions: u64,
}

impl Storage {
    /// Current sizes (a property read per family; no I/O). A property RocksDB cannot give
    /// reads as 0.
    pub fn stats(&self) -> StorageStats {
        let db = self.db();
        let property = |table: Table, name: &str| {
            db.property_int_value_cf(self.cf(table), name).ok().flatten().unwrap_or(0)
        };
        let tables = Table::ALL
            .iter()
            .map(|&table| TableStats {
                table,
                sst_bytes: property(table, "rocksdb.live-sst-files-size"),
                memtable_bytes: property(table, "rocksdb.cur-size-all-mem-tables"),
                estimated_keys: property(table, "rocksdb.estimate-num-keys"),
                pending_compaction_bytes: property(table, "rocksdb.estimate-pending-compaction-bytes"),
            })
            .collect();
        let db_property = |name: &str| db.property_int_value(name).ok().flatten().unwrap_or(0);
        StorageStats {
            tables,
            block_cache_bytes: property(Table::Headers, "rocksdb.block-cache-usage"),
            running_compactions: db_property("rocksdb.num-running-compactions"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{ChainReader, Storage, Table};

    #[test]
    fn stats_report_every_table_with_the_genesis_written() {
        let spec = crate::db::tests::spec(1337);
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &spec).unwrap();
        assert!(storage.head().is_ok());
        let stats = storage.stats();
        assert_eq!(stats.tables.len(), Table::ALL.len());
        let headers = stats.tables.iter().find(|t| t.table == Table::Headers).unwrap();
        assert!(headers.memtable_bytes > 0 && headers.estimated_keys >= 1, "{headers:?}");
    }
}
