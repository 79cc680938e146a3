"""``python app.py doctor``: check a real tenant's setup and say what to fix, in an admin's words.

Each prerequisite of the bot is one check that ends ✓ (passed), ! (passed, but act soon: a
certificate within 30 days of its end), ✗ (failed, with the fix), – (skipped because a check it
needs failed) or ? (could not be checked with the bot's own permissions; says which permission
would let it check, and how to check by hand):

* the credential itself: the certificate (thumbprints, validity), the federated token file
  (issuer, subject, audience, expiry) or the managed identity (its token for the exchange);
* an app-only token for Microsoft Graph (client credentials, as the poller gets it);
* every Graph application permission the bot uses, one line each (the app token's ``roles``);
* the admin-consented delegated permission ``AccessReview.ReadWrite.All`` (the tenant-wide
  ``oauth2PermissionGrant`` of the bot's service principal to Microsoft Graph);
* the SSO Application ID URI on the app registration (``identifierUris``);
* the Teams app in the organization's app catalog (``externalId`` = the bot's app id);
* a Bot Connector token (client credentials for ``https://api.botframework.com``);
* the store (``DATABASE_URL``) answering.

The exit code is 0 when nothing failed or was skipped, 1 otherwise (a warning does not fail). A
"could not check" line does not fail the run: reading delegated permission grants needs
``Directory.Read.All``, which the bot itself does not need, and least privilege should not make
the doctor fail forever.

The package follows those seams: ``credential`` (the first check and the fixes for refused
credentials), ``checks`` (tokens and Graph, :func:`diagnose`, :func:`run_doctor`), ``store`` and
``report`` (results and how they print).

Nothing secret is printed: no client secret, no token, no database password. Tokens are got with
a fresh, unpersisted msal cache, so a permission granted or withdrawn a moment ago shows at once.
"""

from bot.doctor.checks import APPLICATION_PERMISSIONS, DELEGATED_PERMISSION, diagnose, run_doctor
from bot.doctor.report import CheckResult, DoctorReport, Status, render
from bot.doctor.store import check_store

__all__ = [
    "APPLICATION_PERMISSIONS",
    "DELEGATED_PERMISSION",
    "CheckResult",
    "DoctorReport",
    "Status",
    "check_store",
    "diagnose",
    "render",
    "run_doctor",
]
