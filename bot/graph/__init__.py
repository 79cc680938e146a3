"""Microsoft Graph for the bot: one HTTP client, msal token providers, typed calls, one error family.

Build order (all collaborators passed in)::

    http = create_http_client(settings)                                # one pool per process
    # settings.credential: the one CertificateCredential / FederatedTokenFileCredential /
    # ManagedIdentityCredential / SecretCredential every token provider shares
    app_tokens = AppTokenProvider(settings, store=store)
    obo = OboTokenProvider(settings, store=store)
    graph = GraphClient.from_settings(http, tokens=app_tokens, settings=settings,
                                      priority=Priority.LOW)           # background: paced
    reviews = AccessReviewsApi(graph)                                  # app-only reads
    clicks = graph.with_priority(Priority.HIGH)                        # what a reviewer waits on
    as_user = AccessReviewsApi(clicks.with_tokens(obo.for_user(user_oid=oid, sso_token=sso)))
    await as_user.record_decision(DecisionWrite(...))                  # delegated write

Priority, pacing by Graph's reported budget and the two in-flight lanes: :mod:`bot.graph.pacing`.
"""

from bot.graph.client import (
    MAX_BATCH_SIZE,
    BatchRequest,
    BatchResponse,
    GraphClient,
    GraphMetrics,
    GraphResponse,
    RetryPolicy,
    create_http_client,
    parse_retry_after,
)
from bot.graph.config import GraphSettings
from bot.graph.credentials import (
    CertificateCredential,
    ClientCredential,
    CredentialError,
    CredentialStatus,
    CredentialUnavailable,
    FederatedTokenFileCredential,
    ManagedIdentityCredential,
    SecretCredential,
)
from bot.graph.directory import DirectoryApi
from bot.graph.errors import (
    ConsentRequired,
    GraphBadRequest,
    GraphConflict,
    GraphError,
    GraphForbidden,
    GraphNotFound,
    GraphServerError,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
    InteractionRequired,
    InvalidClient,
    NoCachedToken,
    SsoTokenExpired,
    SsoTokenInvalid,
    TokenAcquisitionError,
    TokenServiceUnavailable,
)
from bot.graph.odata import Query, odata_eq, odata_string
from bot.graph.pacing import GraphPacer, PacerMetrics, Priority, ThrottleScope, graph_priority
from bot.graph.reviews import PENDING_DECISIONS, AccessReviewsApi, DecisionWrite, decision_writes
from bot.graph.teams_apps import TeamsAppsApi
from bot.graph.tokens import (
    AppTokenProvider,
    MsalHttpClient,
    OboTokenProvider,
    TokenCacheCipher,
    TokenCacheStore,
    TokenCacheUnreadable,
    TokenMetrics,
    TokenSource,
    UserTokenSource,
)

__all__ = [
    "MAX_BATCH_SIZE",
    "PENDING_DECISIONS",
    "AccessReviewsApi",
    "AppTokenProvider",
    "BatchRequest",
    "BatchResponse",
    "CertificateCredential",
    "ClientCredential",
    "ConsentRequired",
    "CredentialError",
    "CredentialStatus",
    "CredentialUnavailable",
    "DecisionWrite",
    "DirectoryApi",
    "FederatedTokenFileCredential",
    "GraphBadRequest",
    "GraphClient",
    "GraphConflict",
    "GraphError",
    "GraphForbidden",
    "GraphMetrics",
    "GraphNotFound",
    "GraphPacer",
    "GraphResponse",
    "GraphServerError",
    "GraphSettings",
    "GraphThrottled",
    "GraphUnauthorized",
    "GraphUnavailable",
    "InteractionRequired",
    "InvalidClient",
    "ManagedIdentityCredential",
    "MsalHttpClient",
    "NoCachedToken",
    "OboTokenProvider",
    "PacerMetrics",
    "Priority",
    "Query",
    "RetryPolicy",
    "SecretCredential",
    "SsoTokenExpired",
    "SsoTokenInvalid",
    "TeamsAppsApi",
    "ThrottleScope",
    "TokenAcquisitionError",
    "TokenCacheCipher",
    "TokenCacheStore",
    "TokenCacheUnreadable",
    "TokenMetrics",
    "TokenServiceUnavailable",
    "TokenSource",
    "UserTokenSource",
    "create_http_client",
    "decision_writes",
    "graph_priority",
    "odata_eq",
    "odata_string",
    "parse_retry_after",
]
