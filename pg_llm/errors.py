"""Errors a user can act on: each carries an SQLSTATE, a message, a detail and a hint.

The plpython wrappers (see ``pg_llm.boot.run_api``) turn them into ``plpy.error`` calls, so
PL/pgSQL code can catch them by SQLSTATE.
"""

from __future__ import annotations


class LlmError(Exception):
    sqlstate = "XX000"

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None,
                 sqlstate: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint
        if sqlstate:
            self.sqlstate = sqlstate

    def __str__(self) -> str:
        return self.message


# One class per SQLSTATE a user can act on, as a table: name, SQLSTATE, its condition name.
class InvalidParameter(LlmError): sqlstate = "22023"  # invalid_parameter_value
class UndefinedObject(LlmError): sqlstate = "42704"  # undefined_object: engine, model, job...
class DuplicateObject(LlmError): sqlstate = "42710"  # duplicate_object
class InsufficientPrivilege(LlmError): sqlstate = "42501"  # insufficient_privilege
# A scan without a value for a template variable. PostgreSQL has no "missing qual" state;
# null_value_not_allowed fits "no value given".
class MissingPromptValue(LlmError): sqlstate = "22004"
# The endpoint cannot be reached or keeps failing.
class EngineUnavailable(LlmError): sqlstate = "08001"  # sqlclient_unable_to_establish_sqlconnection
class EngineAuthFailed(LlmError): sqlstate = "28000"  # invalid_authorization_specification
# The endpoint answered with an error for this request (4xx other than auth).
class EngineRequestFailed(LlmError): sqlstate = "HV000"  # fdw_error
# A training or evaluation data set that fails validation.
class InvalidData(LlmError): sqlstate = "22000"  # data_exception
class BudgetExceeded(LlmError): sqlstate = "53400"  # configuration_limit_exceeded
class JobStateError(LlmError): sqlstate = "55000"  # object_not_in_prerequisite_state
class FeatureNotSupported(LlmError): sqlstate = "0A000"  # feature_not_supported
