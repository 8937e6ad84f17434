"""PowerShell- and VMM-shaped error records used across the simulator engine.

VMM errors carry their numeric code twice: in the message as ``(Error ID: NNNN)``
(the way VMM's cmdlets print it) and in ``PSError.error_id`` as ``"NNNN,<Cmdlet>"``
(VMM's FullyQualifiedErrorId shape). The codes are the simulator's choice and
mirror VMM where the real code is known (2606 locked by a job, 801 not found).
"""
from __future__ import annotations

import datetime as _dt
import uuid

from .contract import PSError, SimEnum, SimObject

# VMM error codes used by the simulator (see module docstring)
E_NOT_FOUND = 801
E_CONNECT = 1604
E_STATE = 1730
E_LOCKED = 2606
E_INTERNAL = 2912          # default code of an injected 'fail' fault
E_MEMORY = 13206
E_MAINTENANCE = 10653
E_NOT_CLUSTERED = 10468
E_ALREADY_MAINT = 10434
E_SAME_HOST = 10601
E_NO_TARGET = 10470       # SucceedWithInfo: an HA VM could not be live migrated and was saved
E_SCOM = 30001
E_ACCESS = 1605          # refused on behalf of a tenant: outside the role's scope or permissions
E_ROLE = 10800           # a user role request VMM rejects (unknown member, duplicate name, no permission given)


def command_not_found(name: str) -> PSError:
    return PSError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program. Check the spelling of the name, or if a path was included, "
        "verify that the path is correct and try again.",
        error_id="CommandNotFoundException",
        category="ObjectNotFound",
        target=name,
        exception_type="System.Management.Automation.CommandNotFoundException",
    )


def _binding(message: str, error_id: str, target=None) -> PSError:
    return PSError(message, error_id=error_id, category="InvalidArgument", target=target,
                   exception_type="System.Management.Automation.ParameterBindingException")


def parameter_not_found(name: str) -> PSError:
    return _binding(f"A parameter cannot be found that matches parameter name '{name}'.",
                    "NamedParameterNotFound", name)


def ambiguous_parameter(name: str, matches: list[str]) -> PSError:
    opts = " ".join("-" + m for m in matches)
    return _binding(f"Parameter cannot be processed because the parameter name '{name}' is ambiguous. "
                    f"Possible matches include: {opts}.", "AmbiguousParameter", name)


def positional_not_found(value) -> PSError:
    return _binding(f"A positional parameter cannot be found that accepts argument '{value}'.",
                    "PositionalParameterNotFound", value)


def missing_argument(name: str, type_name: str) -> PSError:
    return _binding(f"Missing an argument for parameter '{name}'. Specify a parameter of type "
                    f"'{type_name}' and try again.", "MissingArgument", name)


def missing_mandatory(names: list[str]) -> PSError:
    return _binding("Cannot process command because of one or more missing mandatory parameters: "
                    f"{' '.join(names)}.", "MissingMandatoryParameter")


def parameter_bound_twice(name: str) -> PSError:
    return _binding(f"Cannot bind parameter because parameter '{name}' is specified more than once.",
                    "ParameterAlreadyBound", name)


def null_not_allowed(name: str) -> PSError:
    return PSError(f"Cannot bind argument to parameter '{name}' because it is null.",
                   error_id="ParameterArgumentValidationErrorNullNotAllowed", category="InvalidData",
                   exception_type="System.Management.Automation.ParameterBindingValidationException")


def dotnet_type(value) -> str:
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32" if -2**31 <= value < 2**31 else "System.Int64"
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, uuid.UUID):
        return "System.Guid"
    if isinstance(value, _dt.datetime):
        return "System.DateTime"
    if isinstance(value, (list, tuple)):
        return "System.Object[]"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    if isinstance(value, SimEnum):
        return value.type_name
    if isinstance(value, SimObject) and value.type_names:
        return value.type_names[0]
    return "System.Object"


def cannot_convert(param: str, value, target_type: str, detail: str = "") -> PSError:
    shown = "System.Object[]" if isinstance(value, (list, tuple)) else value
    msg = (f'Cannot bind parameter \'{param}\'. Cannot convert the "{shown}" value of type '
           f'"{dotnet_type(value)}" to type "{target_type}".')
    if detail:
        msg = f'Cannot bind parameter \'{param}\'. Cannot convert value "{shown}" to type "{target_type}". Error: "{detail}"'
    return PSError(msg, error_id="CannotConvertArgumentNoMessage", category="InvalidArgument",
                   target=value, exception_type="System.Management.Automation.ParameterBindingException",
                   reason="ParameterBindingException")


def validate_set(param: str, value, allowed) -> PSError:
    return PSError(f"Cannot validate argument on parameter '{param}'. The argument \"{value}\" does not belong "
                   f"to the set \"{','.join(allowed)}\" specified by the ValidateSet attribute. "
                   "Supply an argument that is in the set and then try the command again.",
                   error_id="ParameterArgumentValidationError", category="InvalidData",
                   exception_type="System.Management.Automation.ParameterBindingValidationException")


def input_not_bound(value) -> PSError:
    return PSError("The input object cannot be bound to any parameters for the command either because "
                   "the command does not take pipeline input or the input and its properties do not "
                   "match any of the parameters that take pipeline input.",
                   error_id="InputObjectNotBound", category="InvalidArgument", target=value,
                   exception_type="System.Management.Automation.ParameterBindingException")


def parser_error(message: str, error_id: str, source: str = "", pos: int = 0) -> PSError:
    line_no = source.count("\n", 0, pos) + 1
    line_start = source.rfind("\n", 0, pos) + 1
    line_end = source.find("\n", pos)
    line = source[line_start:line_end if line_end >= 0 else len(source)]
    col = pos - line_start + 1
    text = f"At line:{line_no} char:{col}\n+ {line}\n+ {' ' * (col - 1)}~\n{message}"
    return PSError(text, error_id=error_id, category="ParserError",
                   exception_type="System.Management.Automation.ParseException")


def pipeline_stopped() -> PSError:
    return PSError("The pipeline has been stopped.", error_id="PipelineStopped", category="OperationStopped",
                   exception_type="System.Management.Automation.PipelineStoppedException")


def vmm_error(code: int, message: str, cmdlet: str = "", target=None,
              category: str = "InvalidOperation") -> PSError:
    err = PSError(f"{message} (Error ID: {code})", error_id=f"{code},{cmdlet}" if cmdlet else str(code),
                  category=category, target=target,
                  exception_type="Microsoft.VirtualManager.Utils.CarmineException")
    err.vmm_code = code
    err.vmm_problem = message
    return err


class VmmFailure(Exception):
    """Raised inside the fabric for a VMM rule violation; turned into a PSError / job ErrorInfo."""

    def __init__(self, code: int, message: str, recommended: str = "", category: str = "InvalidOperation"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.recommended = recommended or "Resolve the issue and then try the operation again."
        self.category = category

    def to_pserror(self, cmdlet: str = "", target=None) -> PSError:
        return vmm_error(self.code, self.message, cmdlet, target, self.category)
