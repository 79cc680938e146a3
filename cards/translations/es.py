"""Spanish (es): "usted", Microsoft's terms: revisión de acceso, revisor, recomendación,
Aprobar / Denegar / No lo sé, Mi acceso."""

from __future__ import annotations

from collections.abc import Mapping

from cards.strings import S

TABLE: Mapping[str, str | Mapping[str, str]] = {
    S.DUE_TODAY: "hoy",
    S.DUE_TOMORROW: "mañana",
    S.DUE_OVERDUE: {"one": "vencida hace {n} día", "other": "vencida hace {n} días"},
    S.DUE_LINE: "Vence el {date} ({relative})",
    S.DUE_SHORT_TODAY: "hoy",
    S.DUE_SHORT_TOMORROW: "mañana",
    S.DUE_SHORT_WEEKDAY: "el {weekday}",
    S.DUE_SHORT_DATE: "el {date}",
    S.ENDED_ON: "Esta revisión finalizó el {date}.",
    S.REVIEW_TITLE: "Revisión de acceso: {name}",
    S.REVIEW_RESOURCE: "Recurso: {resource}",
    S.STAGE: "Fase {number} de {count}",
    S.PROGRESS: "Decididos: {decided} de {total}",
    S.PROGRESS_SAVING: {"one": "{n} pendiente de guardar", "other": "{n} pendientes de guardar"},
    S.ALL_DONE: "Gracias: no queda nada pendiente",
    S.ALL_DONE_DETAIL: "Ha tomado una decisión sobre todos los elementos de esta revisión.",
    S.REVIEW_ENDED: "Esta revisión ha finalizado. Las decisiones ya no se pueden cambiar.",
    S.NO_ITEMS: "No tiene elementos en esta revisión.",
    S.INSTRUCTIONS: "Instrucciones: {text}",
    S.DEFAULT_NONE: (
        "Si nadie decide sobre un elemento antes del vencimiento, el acceso se mantiene igual."
    ),
    S.DEFAULT_APPROVE: "Si nadie decide sobre un elemento antes del vencimiento, se aprueba.",
    S.DEFAULT_DENY: "Si nadie decide sobre un elemento antes del vencimiento, se **deniega**.",
    S.DEFAULT_RECOMMENDATION: (
        "Si nadie decide sobre un elemento antes del vencimiento, se aplica su recomendación."
    ),
    S.AUTO_APPLY_ON: "Los resultados se aplican automáticamente al finalizar la revisión.",
    S.AUTO_APPLY_OFF: "El propietario de la revisión aplica los resultados cuando esta finaliza.",
    S.ENDED_DEFAULT_NONE: "Los elementos sin decisión conservan su acceso.",
    S.ENDED_DEFAULT_APPROVE: "Los elementos sin decisión se aprobaron.",
    S.ENDED_DEFAULT_DENY: "Los elementos sin decisión se denegaron.",
    S.ENDED_DEFAULT_RECOMMENDATION: (
        "A los elementos sin decisión se les aplicó su recomendación."
    ),
    S.JUSTIFICATION_LABEL: "Justificación (obligatoria en cada decisión)",
    S.JUSTIFICATION_PLACEHOLDER: "¿Por qué debe mantenerse o quitarse este acceso?",
    S.JUSTIFICATION_ERROR: "Esta revisión requiere una justificación.",
    S.PAGE_INFO: "Página {page} · elementos {first}–{last} de {total}",
    S.PREVIOUS: "Anterior",
    S.NEXT: "Siguiente",
    S.ACCEPT_RECOMMENDATIONS: "Aceptar recomendaciones",
    S.RECOMMENDATION_COUNTS: "Recomendaciones: {approve} para aprobar, {deny} para denegar",
    S.OPEN_MY_ACCESS: "Abrir Mi acceso",
    S.BULK_HINT: "O seleccione varios elementos arriba y decida sobre todos a la vez:",
    S.SELECT: "Seleccionar",
    S.FALLBACK: "Revisión de acceso «{name}»: decididos {decided} de {total}.",
    S.GUEST: "Invitado",
    S.MEMBER: "Miembro",
    S.APPLICATION: "Aplicación",
    S.APP_ID: "Id. de aplicación {app_id}",
    S.ON_RESOURCE: "Acceso a {resource}",
    S.RECOMMENDATION_LINE: "Recomendación: {recommendation}",
    S.RECOMMENDATION_WITH_REASON: "Recomendación: {recommendation} — {reason}",
    S.RECOMMEND_APPROVE: "**aprobar**",
    S.RECOMMEND_DENY: "**denegar**",
    S.NO_RECOMMENDATION: "Sin recomendación",
    S.REASON_NO_RECENT_SIGN_IN: {
        "one": "sin iniciar sesión desde hace {n} día",
        "other": "sin iniciar sesión desde hace {n} días",
    },
    S.REASON_NEVER_SIGNED_IN: "nunca ha iniciado sesión",
    S.REASON_RECENT_SIGN_IN: "inició sesión {ago}",
    S.REASON_SIGNED_IN_TODAY: "inició sesión hoy",
    S.REASON_PEER_OUTLIER: "acceso distinto al de sus compañeros",
    S.REASON_ACCOUNT_DISABLED: "cuenta deshabilitada",
    S.LAST_SIGN_IN: "Último inicio de sesión: {when}",
    S.LAST_SIGN_IN_NEVER: "Último inicio de sesión: nunca",
    S.APPROVE: "Aprobar",
    S.DENY: "Denegar",
    S.DONT_KNOW: "No lo sé",
    S.DECIDED_APPROVE: "✓ Aprobado por {who}",
    S.DECIDED_DENY: "✗ Denegado por {who}",
    S.DECIDED_DONT_KNOW: "? No lo sé — por {who}",
    S.DECIDED_BY_YOU: "usted",
    S.DECIDED_BY_UNKNOWN: "otro revisor",
    S.WITH_TIME: "{text} · {when}",
    S.NOT_DECIDED: "Sin decidir",
    S.DECISION_REASON: "Justificación: {text}",
    S.SAVING_ITEM: "Guardando… ({decision})",
    S.FAILED_ITEM: "No guardado: {message}",
    S.EARLIER_APPROVE: "Fase {stage}: aprobado por {who}",
    S.EARLIER_DENY: "Fase {stage}: denegado por {who}",
    S.EARLIER_DONT_KNOW: "Fase {stage}: no lo sé — por {who}",
    S.EARLIER_NOT_REVIEWED: "Fase {stage}: sin revisar",
    S.EARLIER_REASON: "«{text}»",
    S.DECISION_NAME_APPROVE: "aprobar",
    S.DECISION_NAME_DENY: "denegar",
    S.DECISION_NAME_DONT_KNOW: "no lo sé",
    S.PREVIEW_TITLE: "¿Aceptar las recomendaciones de {name}?",
    S.PREVIEW_DENY_INTRO: {
        "one": "**Se denegará el acceso a {n} persona o aplicación**, que lo perderá:",
        "other": "**Se denegará el acceso a {n} personas o aplicaciones**, que lo perderán:",
    },
    S.PREVIEW_NO_DENY: "No se denegará el acceso a nadie.",
    S.PREVIEW_APPROVE_COUNT: {
        "one": "Se aprobará {n} elemento.",
        "other": "Se aprobarán {n} elementos.",
    },
    S.PREVIEW_UNCHANGED_COUNT: {
        "one": "{n} elemento no tiene recomendación y quedará sin decidir.",
        "other": "{n} elementos no tienen recomendación y quedarán sin decidir.",
    },
    S.PREVIEW_MORE: {"one": "…y {n} más", "other": "…y {n} más"},
    S.PREVIEW_CONFIRM: "Aceptar recomendaciones",
    S.PREVIEW_CANCEL: "Cancelar",
    S.PREVIEW_NOTHING: "No quedan recomendaciones por aceptar.",
    S.REMINDER_TITLE: "Recordatorio: {name}",
    S.REMINDER_LEFT: "Pendientes: {left} de {total}; vence {due}",
    S.SNOOZE_TOMORROW: "Posponer hasta mañana",
    S.SNOOZE_4H: "Posponer 4 horas",
    S.ESCALATION_TITLE: "Una revisión de acceso requiere atención",
    S.ESCALATION_LINE: {
        "one": "**{who}** tiene {n} decisión pendiente que vence {due}",
        "other": "**{who}** tiene {n} decisiones pendientes que vencen {due}",
    },
    S.ESCALATION_REVIEW: "Revisión: {name}",
    S.ESCALATION_PROGRESS: "Decididos hasta ahora: {decided} de {total}",
    S.ESCALATION_DUE: "Vence el {date} ({relative})",
    S.NUDGE: "Recordar",
    S.NUDGED_AT: "Recordatorio enviado a {who} · {when}",
    S.UNKNOWN_REVIEWER: "Un revisor",
    S.PENDING_TITLE: "Sus revisiones de acceso pendientes",
    S.PENDING_NONE: "No tiene revisiones de acceso pendientes.",
    S.PENDING_LINE: "Pendientes: {pending} de {total} · vence {due}",
    S.PENDING_OPEN: "Abrir",
    S.PENDING_MORE: {
        "one": "…y {n} revisión más. Abra Mi acceso para verlas todas.",
        "other": "…y {n} revisiones más. Abra Mi acceso para verlas todas.",
    },
    S.HELP_TITLE: "Qué puedo hacer",
    S.HELP_INTRO: (
        "Le envío las revisiones de acceso sobre las que tiene que decidir, se las recuerdo "
        "antes de que venzan y registro sus decisiones en Microsoft Entra ID en su nombre."
    ),
    S.HELP_PENDING: "**pendientes** — ver sus revisiones de acceso pendientes",
    S.HELP_SNOOZE: "**posponer** — pausar los recordatorios hasta su próximo día laborable",
    S.HELP_HELP: "**ayuda** — mostrar este mensaje",
    S.HELP_CARDS: (
        "En una tarjeta de revisión, elija Aprobar, Denegar o No lo sé para cada elemento, "
        "seleccione varios y decida sobre todos a la vez, o acepte las recomendaciones después "
        "de comprobar a quién se denegará el acceso."
    ),
    S.SIGNIN_TITLE: "Es necesario iniciar sesión",
    S.SIGNIN_SIGN_IN_REQUIRED: (
        "Para registrar las decisiones en su nombre, necesito que inicie sesión una vez en "
        "Microsoft Entra ID."
    ),
    S.SIGNIN_CONSENT_REQUIRED: (
        "Para registrar sus decisiones, esta aplicación necesita su consentimiento para actuar "
        "en su nombre sobre las revisiones de acceso."
    ),
    S.SIGNIN_MFA_REQUIRED: (
        "Su organización le pide que verifique su identidad (autenticación multifactor) antes "
        "de poder registrar decisiones."
    ),
    S.SIGNIN_BUTTON: "Iniciar sesión",
    S.SIGNIN_DONE: "Ya he iniciado sesión: reintentar",
    S.SIGNIN_NOTE: "Su decisión aún no se ha registrado.",
    S.MSG_NOT_A_REVIEWER: "Ya no es revisor de este elemento.",
    S.MSG_ALREADY_DECIDED: "{detail} ya tomó una decisión sobre este elemento.",
    S.MSG_REVIEW_ENDED: "Esta revisión ha finalizado. Las decisiones ya no se pueden cambiar.",
    S.MSG_DECISION_SAVED: "Su decisión se ha guardado.",
    S.MSG_DECISION_FAILED: "No se pudo guardar su decisión. Inténtelo de nuevo.",
    S.MSG_SAVING: "Guardando sus decisiones… Esta tarjeta se actualizará cuando se registren.",
    S.MSG_JUSTIFICATION_REQUIRED: "Esta revisión requiere una justificación en cada decisión.",
    S.MSG_NOTHING_SELECTED: "Seleccione primero al menos un elemento.",
    S.MSG_THROTTLED: "Microsoft Entra ID está ocupado. Inténtelo de nuevo dentro de un minuto.",
    S.MSG_SNOOZED: "De acuerdo, se lo volveré a recordar: {at}.",
    S.MSG_NUDGE_SENT: "Recordatorio enviado a {detail}.",
    S.MSG_RECOMMENDATIONS_ACCEPTED: "Recomendaciones aceptadas.",
    S.MSG_NO_PENDING_REVIEWS: "No tiene revisiones de acceso pendientes.",
    S.MSG_UNKNOWN_COMMAND: (
        "Lo siento, no lo he entendido. Escriba **ayuda** para ver qué puedo hacer."
    ),
    S.MSG_FORBIDDEN: "No tiene permiso para hacer eso.",
    S.MSG_GENERIC_ERROR: "Algo salió mal por nuestra parte. Inténtelo de nuevo más tarde.",
    S.MESSAGE_TITLE_INFO: "Revisiones de acceso",
    S.MESSAGE_TITLE_SUCCESS: "Listo",
    S.MESSAGE_TITLE_WARNING: "Revise esto",
    S.MESSAGE_TITLE_ERROR: "Algo salió mal",
    S.BACK_TO_REVIEW: "Volver a la revisión",
    S.BACK_TO_LIST: "Volver a mis revisiones",
    S.SUMMARY_REVIEW: "Revisión de acceso: {name}",
    S.SUMMARY_REMINDER: "Recordatorio: {name}",
    S.SUMMARY_PENDING: "Sus revisiones de acceso pendientes",
    S.SUMMARY_ESCALATION: "Una revisión de acceso requiere atención",
    S.COMMAND_PENDING: "pendientes",
    S.COMMAND_HELP: "ayuda",
    S.COMMAND_SNOOZE: "posponer",
    S.COMMAND_TOMORROW: "mañana",
    S.CHAT_WELCOME: (
        "Hola, soy Access Review Bot. Cuando una revisión de acceso necesite su decisión, se la "
        "enviaré aquí para que pueda aprobar o denegar con un clic. Escriba **ayuda** para ver "
        "qué puedo hacer."
    ),
    S.CHAT_HELP: (
        "Le ayudo a completar sus revisiones de acceso de Microsoft Entra sin salir de Teams.\n\n"
        "- **pendientes**: sus revisiones pendientes y lo que queda en cada una\n"
        "- **posponer 4h** o **posponer mañana**: menos recordatorios durante un tiempo\n"
        "- **ayuda**: este mensaje\n\n"
        "Cuando una revisión le necesite, le enviaré una tarjeta: aprobar, denegar o «No lo sé», "
        "con un solo clic."
    ),
    S.CHAT_NOT_UNDERSTOOD: "No lo he entendido.",
    S.CHAT_WHO_ARE_YOU: "No he podido identificarle, así que no puedo mostrar sus revisiones.",
    S.CHAT_SNOOZE_UNAVAILABLE: (
        "Los recordatorios no están activos aquí, así que no hay nada que posponer."
    ),
    S.CHAT_SNOOZE_NOTHING_OPEN: (
        "No tiene revisiones pendientes, así que no hay recordatorios que posponer."
    ),
    S.CHAT_SNOOZE_USAGE: "Pruebe **posponer 4h** o **posponer mañana**.",
    S.CHAT_SNOOZE_NOTHING: "Ahora mismo no hay nada que posponer.",
    S.CHAT_SNOOZED_UNTIL: (
        "Recordatorios pospuestos hasta: {until} (nunca más allá del último recordatorio antes "
        "de un vencimiento)."
    ),
    S.CHAT_TURN_ERROR: "Lo siento, algo salió mal por mi parte. Inténtelo de nuevo.",
    S.ERROR_UNSUPPORTED_BUTTON: "Este botón no es compatible.",
    S.ERROR_MALFORMED_CARD: (
        "Esta tarjeta envió datos que no puedo leer. Vuelva a abrir la revisión."
    ),
    S.ERROR_NOT_READY: "El bot se está iniciando. Inténtelo de nuevo en un momento.",
    S.ERROR_BUSY: "El bot está ocupado y no ha podido confirmar su clic. Inténtelo de nuevo en un momento.",
    S.ERROR_UNIDENTIFIED: "No se pudo identificar su cuenta.",
    S.ERROR_SSO_NOT_CONFIGURED: "El inicio de sesión único no está configurado.",
    S.ERROR_CONSENT_NEEDED: (
        "Se necesita su consentimiento para que el bot pueda actuar en su nombre."
    ),
    S.ERROR_SIGN_IN_TO_TEAMS: "Inicie sesión en Teams e inténtelo de nuevo.",
    S.LOGIN_PROMPT: "Inicie sesión para que su decisión se registre en su nombre.",
    S.MSG_JUSTIFICATION_TOO_LONG: "Esa justificación es demasiado larga: una justificación puede tener como máximo {detail} caracteres. Acórtela e inténtelo de nuevo.",
    S.MSG_NUDGE_NOT_RECIPIENT: "Solo puede enviar un recordatorio a un revisor cuya escalación se le envió a usted. No se envió nada.",
    S.REVIEW_APPLIED: "Esta revisión ha finalizado y sus resultados se han aplicado.",
    S.REVIEW_APPLYING: "Esta revisión ha finalizado y sus resultados se están aplicando.",
    S.REVIEW_AUTO_REVIEWED: "Esta revisión ha finalizado. Los elementos que nadie decidió se decidieron automáticamente.",
    S.REVIEW_AUTO_REVIEWING: "Esta revisión ha finalizado y los elementos sin decidir se están decidiendo automáticamente; ya no se admiten decisiones.",
    S.REVIEW_COMPLETING: "Esta revisión se está completando; ya no se admiten decisiones.",
    S.REVIEW_NOT_OPEN: "Esta revisión no está abierta a decisiones.",
    S.REVIEW_NOT_STARTED: "Esta revisión aún no ha comenzado. Podrá decidir cuando comience.",
    S.REVIEW_STARTING: "Esta revisión se está iniciando. Podrá decidir en unos minutos.",
    S.STATUS_APPLIED: "Aplicada",
    S.STATUS_APPLYING: "Aplicando resultados",
    S.STATUS_AUTO_REVIEWED: "Decidida automáticamente",
    S.STATUS_AUTO_REVIEWING: "Decidiendo automáticamente; sin más decisiones",
    S.STATUS_COMPLETED: "Completada",
    S.STATUS_COMPLETING: "Completándose; sin más decisiones",
    S.STATUS_DELETED: "Eliminada",
    S.STATUS_IN_PROGRESS: "En curso",
    S.STATUS_NOT_OPEN: "No abierta a decisiones ({status})",
    S.STATUS_NOT_STARTED: "No iniciada",
    S.STATUS_STARTING: "Iniciándose",
}
