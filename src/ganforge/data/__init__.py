"""The data layer: sources, splitting, and the prepared tensor store with its loader.

`prepare_dataset` decodes a source once into `<dir>/{train,val,test}.pt` + `meta.json`;
`load_split` / `load_meta` read them back (memory-mapped).
"""

from ganforge.data.errors import DataError, StoreMissingError
from ganforge.data.prepare import prepare_dataset
from ganforge.data.scaling import to_model_range, to_uint8
from ganforge.data.splits import stratified_split
from ganforge.data.store import SPLITS, PreparedSplit, load_meta, load_split

__all__ = [
    "SPLITS",
    "DataError",
    "PreparedSplit",
    "StoreMissingError",
    "load_meta",
    "load_split",
    "prepare_dataset",
    "stratified_split",
    "to_model_range",
    "to_uint8",
]
