"""Feed contracts: data, not code. Loading, checking and the built-in e-commerce pack."""

from shoplake.contracts.loader import ContractSet, load_contract_file, load_contracts, parse_contract
from shoplake.contracts.model import Column, ColumnType, Contract, DriftPolicy, LoadMode, Rule, Severity, Untracked

__all__ = [
    "Column",
    "ColumnType",
    "Contract",
    "ContractSet",
    "DriftPolicy",
    "LoadMode",
    "Rule",
    "Severity",
    "Untracked",
    "load_contract_file",
    "load_contracts",
    "parse_contract",
]
