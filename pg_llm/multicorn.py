"""The Multicorn API that wrappers are written against: ForeignDataWrapper, Qual,
ColumnDefinition.

Under pg_llm's own C bridge these small classes are used. When the real Multicorn2 is
importable (the backend runs ``CREATE SERVER ... FOREIGN DATA WRAPPER multicorn``), its
classes are re-exported instead, so ``pg_llm.fdw.ModelTable`` subclasses the real
``multicorn.ForeignDataWrapper`` and runs unchanged under either bridge.
"""

from __future__ import annotations

try:  # inside a backend where Multicorn2 is installed (make multicorn2)
    from multicorn import ColumnDefinition, ForeignDataWrapper, Qual  # type: ignore

    REAL_MULTICORN = True
except ImportError:
    REAL_MULTICORN = False

    class ColumnDefinition:
        """A column of the foreign table, as Multicorn describes it."""

        def __init__(self, column_name: str, type_oid: int = 0, typmod: int = 0,
                     type_name: str = "", base_type_name: str = "", options=None):
            self.column_name = column_name
            self.type_oid = type_oid
            self.typmod = typmod
            self.type_name = type_name
            self.base_type_name = base_type_name or type_name
            self.options = options or {}

        def __repr__(self) -> str:
            return f"ColumnDefinition({self.column_name!r}, type_name={self.type_name!r})"

    class Qual:
        """A restriction the scan received: ``field_name operator value``.

        For ``col = ANY(array)`` the operator is the tuple ``('=', True)`` and the value a
        list, as in Multicorn.
        """

        def __init__(self, field_name: str, operator, value):
            self.field_name = field_name
            self.operator = operator
            self.value = value

        @property
        def is_list_operator(self) -> bool:
            return isinstance(self.operator, tuple)

        @property
        def list_any_or_all(self):
            # Multicorn: True for ANY, False for ALL, None for a scalar operator
            return self.operator[1] if self.is_list_operator else None

        def __repr__(self) -> str:
            op = self.operator
            if self.is_list_operator:
                op = f"{op[0]} {'ANY' if op[1] else 'ALL'}"
            return f"{self.field_name} {op} {self.value!r}"

        def __eq__(self, other) -> bool:
            return (isinstance(other, Qual) and self.field_name == other.field_name
                    and self.operator == other.operator and self.value == other.value)

    class ForeignDataWrapper:
        """Base class of a wrapper: one instance per table (and options) per backend."""

        def __init__(self, fdw_options: dict, fdw_columns: dict):
            self.fdw_options = fdw_options
            self.fdw_columns = fdw_columns

        def execute(self, quals: list, columns):
            """Return (or yield) rows: dicts keyed by column name, or lists in column order."""
            raise NotImplementedError

        def get_rel_size(self, quals, columns):
            return (1000, 100)

        def get_path_keys(self):
            return []


__all__ = ["ColumnDefinition", "ForeignDataWrapper", "Qual", "REAL_MULTICORN"]
