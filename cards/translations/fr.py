"""French (fr): "vous", Microsoft's terms: révision d'accès, réviseur, recommandation,
Approuver / Refuser / Je ne sais pas, Mon Accès."""

from __future__ import annotations

from collections.abc import Mapping

from cards.strings import S

_NBSP = "\u00a0"


def _typography(table: Mapping[str, str | Mapping[str, str]]) -> dict[str, str | Mapping[str, str]]:
    """French spacing: a no-break space before : ? ! ; and inside « », so a line never starts
    with a lone colon or guillemet when the card wraps."""

    def fix(text: str) -> str:
        for before, after in (
            (" :", _NBSP + ":"),
            (" ?", _NBSP + "?"),
            (" !", _NBSP + "!"),
            (" ;", _NBSP + ";"),
            ("« ", "«" + _NBSP),
            (" »", _NBSP + "»"),
        ):
            text = text.replace(before, after)
        return text

    return {
        key: fix(entry) if isinstance(entry, str) else {c: fix(t) for c, t in entry.items()}
        for key, entry in table.items()
    }


TABLE: Mapping[str, str | Mapping[str, str]] = _typography(
    {
        S.DUE_TODAY: "aujourd'hui",
        S.DUE_TOMORROW: "demain",
        S.DUE_OVERDUE: {"one": "en retard de {n} jour", "other": "en retard de {n} jours"},
        S.DUE_LINE: "Échéance : {date} ({relative})",
        S.DUE_SHORT_TODAY: "aujourd'hui",
        S.DUE_SHORT_TOMORROW: "demain",
        S.DUE_SHORT_WEEKDAY: "{weekday}",
        S.DUE_SHORT_DATE: "le {date}",
        S.ENDED_ON: "Cette révision s'est terminée le {date}.",
        S.REVIEW_TITLE: "Révision d'accès : {name}",
        S.REVIEW_RESOURCE: "Ressource : {resource}",
        S.STAGE: "Étape {number} sur {count}",
        S.PROGRESS: "Décisions prises : {decided} sur {total}",
        S.PROGRESS_SAVING: {
            "one": "{n} en cours d'enregistrement",
            "other": "{n} en cours d'enregistrement",
        },
        S.ALL_DONE: "Merci, tout est traité",
        S.ALL_DONE_DETAIL: "Vous avez pris une décision pour chaque élément de cette révision.",
        S.REVIEW_ENDED: (
            "Cette révision est terminée. Les décisions ne peuvent plus être modifiées."
        ),
        S.NO_ITEMS: "Vous n'avez aucun élément dans cette révision.",
        S.INSTRUCTIONS: "Instructions : {text}",
        S.DEFAULT_NONE: (
            "Si personne ne se prononce sur un élément avant l'échéance, l'accès reste inchangé."
        ),
        S.DEFAULT_APPROVE: (
            "Si personne ne se prononce sur un élément avant l'échéance, il est approuvé."
        ),
        S.DEFAULT_DENY: (
            "Si personne ne se prononce sur un élément avant l'échéance, il est **refusé**."
        ),
        S.DEFAULT_RECOMMENDATION: (
            "Si personne ne se prononce sur un élément avant l'échéance, sa recommandation est "
            "appliquée."
        ),
        S.AUTO_APPLY_ON: "Les résultats sont appliqués automatiquement à la fin de la révision.",
        S.AUTO_APPLY_OFF: (
            "Les résultats sont appliqués par le propriétaire de la révision une fois celle-ci "
            "terminée."
        ),
        S.ENDED_DEFAULT_NONE: "Les éléments sans décision conservent leur accès.",
        S.ENDED_DEFAULT_APPROVE: "Les éléments sans décision ont été approuvés.",
        S.ENDED_DEFAULT_DENY: "Les éléments sans décision ont été refusés.",
        S.ENDED_DEFAULT_RECOMMENDATION: (
            "Les éléments sans décision ont suivi leur recommandation."
        ),
        S.JUSTIFICATION_LABEL: "Justification (obligatoire pour chaque décision)",
        S.JUSTIFICATION_PLACEHOLDER: "Pourquoi cet accès doit-il être conservé ou retiré ?",
        S.JUSTIFICATION_ERROR: "Cette révision exige une justification.",
        S.PAGE_INFO: "Page {page} · éléments {first} à {last} sur {total}",
        S.PREVIOUS: "Précédent",
        S.NEXT: "Suivant",
        S.ACCEPT_RECOMMENDATIONS: "Accepter les recommandations",
        S.RECOMMENDATION_COUNTS: "Recommandations : {approve} à approuver, {deny} à refuser",
        S.OPEN_MY_ACCESS: "Ouvrir Mon Accès",
        S.BULK_HINT: "Ou sélectionnez plusieurs éléments ci-dessus et traitez-les ensemble :",
        S.SELECT: "Sélectionner",
        S.FALLBACK: "Révision d'accès « {name} » — décisions prises : {decided} sur {total}.",
        S.GUEST: "Invité",
        S.MEMBER: "Membre",
        S.APPLICATION: "Application",
        S.APP_ID: "ID d'application {app_id}",
        S.ON_RESOURCE: "Accès à {resource}",
        S.RECOMMENDATION_LINE: "Recommandation : {recommendation}",
        S.RECOMMENDATION_WITH_REASON: "Recommandation : {recommendation} — {reason}",
        S.RECOMMEND_APPROVE: "**approuver**",
        S.RECOMMEND_DENY: "**refuser**",
        S.NO_RECOMMENDATION: "Aucune recommandation",
        S.REASON_NO_RECENT_SIGN_IN: {
            "one": "aucune connexion depuis {n} jour",
            "other": "aucune connexion depuis {n} jours",
        },
        S.REASON_NEVER_SIGNED_IN: "jamais connecté",
        S.REASON_RECENT_SIGN_IN: "connecté {ago}",
        S.REASON_SIGNED_IN_TODAY: "connecté aujourd'hui",
        S.REASON_PEER_OUTLIER: "accès différent de celui de ses pairs",
        S.REASON_ACCOUNT_DISABLED: "compte désactivé",
        S.LAST_SIGN_IN: "Dernière connexion : {when}",
        S.LAST_SIGN_IN_NEVER: "Dernière connexion : jamais",
        S.APPROVE: "Approuver",
        S.DENY: "Refuser",
        S.DONT_KNOW: "Je ne sais pas",
        S.DECIDED_APPROVE: "✓ Approuvé par {who}",
        S.DECIDED_DENY: "✗ Refusé par {who}",
        S.DECIDED_DONT_KNOW: "? Je ne sais pas — par {who}",
        S.DECIDED_BY_YOU: "vous",
        S.DECIDED_BY_UNKNOWN: "un autre réviseur",
        S.WITH_TIME: "{text} · {when}",
        S.NOT_DECIDED: "Aucune décision",
        S.DECISION_REASON: "Justification : {text}",
        S.SAVING_ITEM: "Enregistrement… ({decision})",
        S.FAILED_ITEM: "Non enregistré : {message}",
        S.EARLIER_APPROVE: "Étape {stage} : approuvé par {who}",
        S.EARLIER_DENY: "Étape {stage} : refusé par {who}",
        S.EARLIER_DONT_KNOW: "Étape {stage} : je ne sais pas — par {who}",
        S.EARLIER_NOT_REVIEWED: "Étape {stage} : non révisé",
        S.EARLIER_REASON: "« {text} »",
        S.DECISION_NAME_APPROVE: "approuver",
        S.DECISION_NAME_DENY: "refuser",
        S.DECISION_NAME_DONT_KNOW: "je ne sais pas",
        S.PREVIEW_TITLE: "Accepter les recommandations pour {name} ?",
        S.PREVIEW_DENY_INTRO: {
            "one": "**{n} personne ou application sera refusée** et perdra son accès :",
            "other": "**{n} personnes ou applications seront refusées** et perdront leur accès :",
        },
        S.PREVIEW_NO_DENY: "Aucun accès ne sera refusé.",
        S.PREVIEW_APPROVE_COUNT: {
            "one": "{n} élément sera approuvé.",
            "other": "{n} éléments seront approuvés.",
        },
        S.PREVIEW_UNCHANGED_COUNT: {
            "one": "{n} élément n'a pas de recommandation et reste sans décision.",
            "other": "{n} éléments n'ont pas de recommandation et restent sans décision.",
        },
        S.PREVIEW_MORE: {"one": "… et {n} autre", "other": "… et {n} autres"},
        S.PREVIEW_CONFIRM: "Accepter les recommandations",
        S.PREVIEW_CANCEL: "Annuler",
        S.PREVIEW_NOTHING: "Il n'y a plus de recommandations à accepter.",
        S.REMINDER_TITLE: "Rappel : {name}",
        S.REMINDER_LEFT: "Encore {left} sur {total} à traiter, échéance {due}",
        S.SNOOZE_TOMORROW: "Reporter à demain",
        S.SNOOZE_4H: "Reporter de 4 heures",
        S.ESCALATION_TITLE: "Une révision d'accès demande votre attention",
        S.ESCALATION_LINE: {
            "one": "**{who}** a encore {n} décision à prendre, échéance {due}",
            "other": "**{who}** a encore {n} décisions à prendre, échéance {due}",
        },
        S.ESCALATION_REVIEW: "Révision : {name}",
        S.ESCALATION_PROGRESS: "Décisions prises jusqu'ici : {decided} sur {total}",
        S.ESCALATION_DUE: "Échéance : {date} ({relative})",
        S.NUDGE: "Relancer",
        S.NUDGED_AT: "Relance envoyée à {who} · {when}",
        S.UNKNOWN_REVIEWER: "Un réviseur",
        S.PENDING_TITLE: "Vos révisions d'accès en attente",
        S.PENDING_NONE: "Vous n'avez aucune révision d'accès en attente.",
        S.PENDING_LINE: "Encore {pending} sur {total} · échéance {due}",
        S.PENDING_OPEN: "Ouvrir",
        S.PENDING_MORE: {
            "one": "… et {n} autre révision. Ouvrez Mon Accès pour tout voir.",
            "other": "… et {n} autres révisions. Ouvrez Mon Accès pour tout voir.",
        },
        S.HELP_TITLE: "Ce que je peux faire",
        S.HELP_INTRO: (
            "Je vous envoie les révisions d'accès sur lesquelles vous devez vous prononcer, je "
            "vous les rappelle avant l'échéance et j'enregistre vos décisions en votre nom dans "
            "Microsoft Entra ID."
        ),
        S.HELP_PENDING: "**en attente** — afficher vos révisions d'accès en attente",
        S.HELP_SNOOZE: "**reporter** — suspendre les rappels jusqu'à votre prochain jour ouvré",
        S.HELP_HELP: "**aide** — afficher ce message",
        S.HELP_CARDS: (
            "Sur une carte de révision, choisissez Approuver, Refuser ou Je ne sais pas pour "
            "chaque élément, sélectionnez-en plusieurs pour les traiter ensemble, ou acceptez les "
            "recommandations après avoir vérifié à qui l'accès sera refusé."
        ),
        S.SIGNIN_TITLE: "Connexion requise",
        S.SIGNIN_SIGN_IN_REQUIRED: (
            "Pour enregistrer vos décisions en votre nom, j'ai besoin que vous vous connectiez "
            "une fois à Microsoft Entra ID."
        ),
        S.SIGNIN_CONSENT_REQUIRED: (
            "Pour enregistrer vos décisions en votre nom, cette application a besoin de votre "
            "consentement pour agir sur les révisions d'accès à votre place."
        ),
        S.SIGNIN_MFA_REQUIRED: (
            "Votre organisation vous demande de vérifier votre identité (authentification "
            "multifacteur) avant que vos décisions puissent être enregistrées."
        ),
        S.SIGNIN_BUTTON: "Se connecter",
        S.SIGNIN_DONE: "Je suis connecté — réessayer",
        S.SIGNIN_NOTE: "Votre décision n'a pas encore été enregistrée.",
        S.MSG_NOT_A_REVIEWER: "Vous n'êtes plus réviseur de cet élément.",
        S.MSG_ALREADY_DECIDED: "Cet élément a déjà été traité par {detail}.",
        S.MSG_REVIEW_ENDED: (
            "Cette révision est terminée. Les décisions ne peuvent plus être modifiées."
        ),
        S.MSG_DECISION_SAVED: "Votre décision a été enregistrée.",
        S.MSG_DECISION_FAILED: ("Votre décision n'a pas pu être enregistrée. Veuillez réessayer."),
        S.MSG_SAVING: (
            "Enregistrement de vos décisions… Cette carte sera mise à jour dès qu'elles seront "
            "enregistrées."
        ),
        S.MSG_JUSTIFICATION_REQUIRED: (
            "Cette révision exige une justification pour chaque décision."
        ),
        S.MSG_NOTHING_SELECTED: "Sélectionnez d'abord au moins un élément.",
        S.MSG_THROTTLED: "Microsoft Entra ID est occupé. Veuillez réessayer dans une minute.",
        S.MSG_SNOOZED: "C'est noté, je vous le rappellerai : {at}.",
        S.MSG_NUDGE_SENT: "Rappel envoyé à {detail}.",
        S.MSG_RECOMMENDATIONS_ACCEPTED: "Recommandations acceptées.",
        S.MSG_NO_PENDING_REVIEWS: "Vous n'avez aucune révision d'accès en attente.",
        S.MSG_UNKNOWN_COMMAND: (
            "Désolé, je n'ai pas compris. Tapez **aide** pour voir ce que je peux faire."
        ),
        S.MSG_FORBIDDEN: "Vous n'êtes pas autorisé à effectuer cette action.",
        S.MSG_GENERIC_ERROR: (
            "Un problème est survenu de notre côté. Veuillez réessayer plus tard."
        ),
        S.MESSAGE_TITLE_INFO: "Révisions d'accès",
        S.MESSAGE_TITLE_SUCCESS: "Terminé",
        S.MESSAGE_TITLE_WARNING: "À vérifier",
        S.MESSAGE_TITLE_ERROR: "Un problème est survenu",
        S.BACK_TO_REVIEW: "Revenir à la révision",
        S.BACK_TO_LIST: "Revenir à mes révisions",
        S.SUMMARY_REVIEW: "Révision d'accès : {name}",
        S.SUMMARY_REMINDER: "Rappel : {name}",
        S.SUMMARY_PENDING: "Vos révisions d'accès en attente",
        S.SUMMARY_ESCALATION: "Une révision d'accès demande votre attention",
        S.COMMAND_PENDING: "en attente",
        S.COMMAND_HELP: "aide",
        S.COMMAND_SNOOZE: "reporter",
        S.COMMAND_TOMORROW: "demain",
        S.CHAT_WELCOME: (
            "Bonjour, je suis Access Review Bot. Quand une révision d'accès attend votre "
            "décision, je vous l'envoie ici : vous approuvez ou refusez en un clic. Tapez "
            "**aide** pour voir ce que je peux faire."
        ),
        S.CHAT_HELP: (
            "Je vous aide à terminer vos révisions d'accès Microsoft Entra sans quitter Teams.\n\n"
            "- **en attente** : vos révisions en attente et ce qu'il reste à faire dans chacune\n"
            "- **reporter 4h** ou **reporter demain** : moins de rappels pendant un moment\n"
            "- **aide** : ce message\n\n"
            "Quand une révision a besoin de vous, je vous envoie une carte : approuver, refuser "
            "ou « Je ne sais pas », en un clic chacun."
        ),
        S.CHAT_NOT_UNDERSTOOD: "Je n'ai pas compris.",
        S.CHAT_WHO_ARE_YOU: (
            "Je n'ai pas pu vous identifier, je ne peux donc pas afficher vos révisions."
        ),
        S.CHAT_SNOOZE_UNAVAILABLE: (
            "Les rappels ne sont pas actifs ici : il n'y a rien à reporter."
        ),
        S.CHAT_SNOOZE_NOTHING_OPEN: (
            "Vous n'avez aucune révision en attente, donc aucun rappel à reporter."
        ),
        S.CHAT_SNOOZE_USAGE: "Essayez **reporter 4h** ou **reporter demain**.",
        S.CHAT_SNOOZE_NOTHING: "Rien à reporter pour le moment.",
        S.CHAT_SNOOZED_UNTIL: (
            "Rappels suspendus. Prochain rappel au plus tôt : {until} (jamais au-delà du "
            "dernier rappel avant une échéance)."
        ),
        S.CHAT_TURN_ERROR: ("Désolé, un problème est survenu de mon côté. Veuillez réessayer."),
        S.ERROR_UNSUPPORTED_BUTTON: "Ce bouton n'est pas pris en charge.",
        S.ERROR_MALFORMED_CARD: (
            "Cette carte a envoyé des données que je ne peux pas lire. Rouvrez la révision."
        ),
        S.ERROR_NOT_READY: "Le bot démarre. Veuillez réessayer dans un instant.",
        S.ERROR_BUSY: "Le bot est occupé et n'a pas pu confirmer votre clic. Veuillez réessayer dans un instant.",
        S.ERROR_UNIDENTIFIED: "Votre compte n'a pas pu être identifié.",
        S.ERROR_SSO_NOT_CONFIGURED: "L'authentification unique n'est pas configurée.",
        S.ERROR_CONSENT_NEEDED: (
            "Votre consentement est nécessaire pour que le bot puisse agir en votre nom."
        ),
        S.ERROR_SIGN_IN_TO_TEAMS: "Veuillez vous connecter à Teams, puis réessayer.",
        S.LOGIN_PROMPT: "Connectez-vous pour que votre décision soit enregistrée en votre nom.",
        S.MSG_JUSTIFICATION_TOO_LONG: "Cette justification est trop longue : une justification peut compter au plus {detail} caractères. Raccourcissez-la, puis réessayez.",
        S.MSG_NUDGE_NOT_RECIPIENT: "Vous ne pouvez relancer qu'un réviseur dont l'escalade vous a été envoyée. Rien n'a été envoyé.",
        S.REVIEW_APPLIED: "Cette révision est terminée et ses résultats ont été appliqués.",
        S.REVIEW_APPLYING: "Cette révision est terminée et ses résultats sont en cours d'application.",
        S.REVIEW_AUTO_REVIEWED: "Cette révision est terminée. Les éléments que personne n'a traités ont été décidés automatiquement.",
        S.REVIEW_AUTO_REVIEWING: "Cette révision est terminée et les éléments non traités sont décidés automatiquement — plus aucune décision possible.",
        S.REVIEW_COMPLETING: "Cette révision est en cours de finalisation — plus aucune décision possible.",
        S.REVIEW_NOT_OPEN: "Cette révision n'est pas ouverte aux décisions.",
        S.REVIEW_NOT_STARTED: "Cette révision n'a pas encore commencé. Vous pourrez décider dès qu'elle commencera.",
        S.REVIEW_STARTING: "Cette révision démarre. Vous pourrez décider dans quelques minutes.",
        S.STATUS_APPLIED: "Appliquée",
        S.STATUS_APPLYING: "Application des résultats",
        S.STATUS_AUTO_REVIEWED: "Décidée automatiquement",
        S.STATUS_AUTO_REVIEWING: "Décision automatique en cours — plus de décisions",
        S.STATUS_COMPLETED: "Terminée",
        S.STATUS_COMPLETING: "Finalisation — plus de décisions",
        S.STATUS_DELETED: "Supprimée",
        S.STATUS_IN_PROGRESS: "En cours",
        S.STATUS_NOT_OPEN: "Non ouverte aux décisions ({status})",
        S.STATUS_NOT_STARTED: "Non démarrée",
        S.STATUS_STARTING: "Démarrage",
    }
)
