"""Error codes and audit actions of account security with their English texts (translated
where shown). Registered with the shared tables of error messages and action labels when
this module is imported, which the modules that raise or record them do first."""

from __future__ import annotations

from guanxi.audit.labels import ACTION_LABELS
from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES

SECURITY_MESSAGES: dict[str, str] = {
    "password_too_short": N_("The password needs at least {min_length} characters"),
    "password_has_username": N_("The password must not contain the user name"),
    "password_breached": N_("This password appears in lists of leaked passwords; choose another"),
    "password_wrong": N_("The current password is wrong"),
    "otp_required": N_("Enter the code from your authenticator app"),
    "token_scopes": N_("Choose permissions your role holds"),
    "you cannot disable your own account": N_("You cannot disable your own account"),
    "you cannot change your own role": N_("You cannot change your own role"),
    "second factor already enrolled": N_("A second factor is already set up"),
}
ERROR_MESSAGES.update(SECURITY_MESSAGES)

ACTION_LABELS.update(
    {
        "user.updated": N_("User changed"),
        "user.locked": N_("Account locked after failed sign-ins"),
        "user.unlocked": N_("Account unlocked"),
        "user.password_changed": N_("Password changed"),
        "user.password_reset": N_("Password reset by an administrator"),
        "user.role_changed": N_("Role changed"),
        "user.disabled": N_("Account disabled"),
        "user.enabled": N_("Account enabled"),
        "user.second_factor_enrolled": N_("Second factor set up"),
        "user.second_factor_reset": N_("Second factor reset"),
        "user.recovery_code_used": N_("Recovery code used"),
        "user.recovery_codes_renewed": N_("Recovery codes renewed"),
        "user.session_revoked": N_("Session or token revoked"),
    }
)
