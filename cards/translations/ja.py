"""Japanese (ja): です/ます, Microsoft's terms: アクセス レビュー, レビュー担当者, 推奨事項,
承認 / 拒否, マイ アクセス, サインイン. Japanese has one plural form (``other``)."""

from __future__ import annotations

from collections.abc import Mapping

from cards.strings import S

TABLE: Mapping[str, str | Mapping[str, str]] = {
    S.DUE_TODAY: "今日",
    S.DUE_TOMORROW: "明日",
    S.DUE_OVERDUE: {"other": "期限を {n} 日過ぎています"},
    S.DUE_LINE: "期限: {date}（{relative}）",
    S.DUE_SHORT_TODAY: "今日",
    S.DUE_SHORT_TOMORROW: "明日",
    S.DUE_SHORT_WEEKDAY: "{weekday}",
    S.DUE_SHORT_DATE: "{date}",
    S.ENDED_ON: "このレビューは {date} に終了しました。",
    S.REVIEW_TITLE: "アクセス レビュー: {name}",
    S.REVIEW_RESOURCE: "リソース: {resource}",
    S.STAGE: "ステージ {number} / {count}",
    S.PROGRESS: "{total} 件中 {decided} 件を決定済み",
    S.PROGRESS_SAVING: {"other": "{n} 件を保存中"},
    S.ALL_DONE: "ありがとうございます。残りはありません",
    S.ALL_DONE_DETAIL: "このレビューのすべての項目を決定しました。",
    S.REVIEW_ENDED: "このレビューは終了しました。決定を変更することはできません。",
    S.NO_ITEMS: "このレビューにはあなたの担当項目がありません。",
    S.INSTRUCTIONS: "説明: {text}",
    S.DEFAULT_NONE: "期限までに誰も決定しなかった項目は、アクセスがそのまま維持されます。",
    S.DEFAULT_APPROVE: "期限までに誰も決定しなかった項目は承認されます。",
    S.DEFAULT_DENY: "期限までに誰も決定しなかった項目は**拒否**されます。",
    S.DEFAULT_RECOMMENDATION: "期限までに誰も決定しなかった項目には推奨事項が適用されます。",
    S.AUTO_APPLY_ON: "結果はレビューの終了時に自動的に適用されます。",
    S.AUTO_APPLY_OFF: "結果はレビューの終了後にレビューの所有者が適用します。",
    S.ENDED_DEFAULT_NONE: "決定されなかった項目のアクセスは維持されます。",
    S.ENDED_DEFAULT_APPROVE: "決定されなかった項目は承認されました。",
    S.ENDED_DEFAULT_DENY: "決定されなかった項目は拒否されました。",
    S.ENDED_DEFAULT_RECOMMENDATION: "決定されなかった項目には推奨事項が適用されました。",
    S.JUSTIFICATION_LABEL: "理由 (すべての決定に必須)",
    S.JUSTIFICATION_PLACEHOLDER: "このアクセスを維持または削除する理由を入力してください",
    S.JUSTIFICATION_ERROR: "このレビューでは理由の入力が必要です。",
    S.PAGE_INFO: "{page} ページ目 · {total} 件中 {first}–{last} 件目",
    S.PREVIOUS: "前へ",
    S.NEXT: "次へ",
    S.ACCEPT_RECOMMENDATIONS: "推奨事項を受け入れる",
    S.RECOMMENDATION_COUNTS: "推奨事項: 承認 {approve} 件、拒否 {deny} 件",
    S.OPEN_MY_ACCESS: "マイ アクセスを開く",
    S.BULK_HINT: "または、上で複数の項目を選択してまとめて決定できます:",
    S.SELECT: "選択",
    S.FALLBACK: "アクセス レビュー「{name}」: {total} 件中 {decided} 件を決定済み。",
    S.GUEST: "ゲスト",
    S.MEMBER: "メンバー",
    S.APPLICATION: "アプリケーション",
    S.APP_ID: "アプリ ID {app_id}",
    S.ON_RESOURCE: "{resource} へのアクセス",
    S.RECOMMENDATION_LINE: "推奨: {recommendation}",
    S.RECOMMENDATION_WITH_REASON: "推奨: {recommendation} — {reason}",
    S.RECOMMEND_APPROVE: "**承認**",
    S.RECOMMEND_DENY: "**拒否**",
    S.NO_RECOMMENDATION: "推奨事項なし",
    S.REASON_NO_RECENT_SIGN_IN: {"other": "{n} 日間サインインなし"},
    S.REASON_NEVER_SIGNED_IN: "サインイン履歴なし",
    S.REASON_RECENT_SIGN_IN: "{ago}にサインイン",
    S.REASON_SIGNED_IN_TODAY: "今日サインイン",
    S.REASON_PEER_OUTLIER: "同僚とは異なるアクセス",
    S.REASON_ACCOUNT_DISABLED: "アカウントが無効",
    S.LAST_SIGN_IN: "最終サインイン: {when}",
    S.LAST_SIGN_IN_NEVER: "最終サインイン: なし",
    S.APPROVE: "承認",
    S.DENY: "拒否",
    S.DONT_KNOW: "わからない",
    S.DECIDED_APPROVE: "✓ 承認済み ({who})",
    S.DECIDED_DENY: "✗ 拒否済み ({who})",
    S.DECIDED_DONT_KNOW: "? わからない ({who})",
    S.DECIDED_BY_YOU: "あなた",
    S.DECIDED_BY_UNKNOWN: "別のレビュー担当者",
    S.WITH_TIME: "{text} · {when}",
    S.NOT_DECIDED: "未決定",
    S.DECISION_REASON: "理由: {text}",
    S.SAVING_ITEM: "保存中… ({decision})",
    S.FAILED_ITEM: "保存されませんでした: {message}",
    S.EARLIER_APPROVE: "ステージ {stage}: 承認 ({who})",
    S.EARLIER_DENY: "ステージ {stage}: 拒否 ({who})",
    S.EARLIER_DONT_KNOW: "ステージ {stage}: わからない ({who})",
    S.EARLIER_NOT_REVIEWED: "ステージ {stage}: 未レビュー",
    S.EARLIER_REASON: "「{text}」",
    S.DECISION_NAME_APPROVE: "承認",
    S.DECISION_NAME_DENY: "拒否",
    S.DECISION_NAME_DONT_KNOW: "わからない",
    S.PREVIEW_TITLE: "{name} の推奨事項を受け入れますか?",
    S.PREVIEW_DENY_INTRO: {
        "other": "**{n} 件のユーザーまたはアプリが拒否され**、アクセスを失います:",
    },
    S.PREVIEW_NO_DENY: "拒否される対象はありません。",
    S.PREVIEW_APPROVE_COUNT: {"other": "{n} 件の項目が承認されます。"},
    S.PREVIEW_UNCHANGED_COUNT: {
        "other": "{n} 件の項目には推奨事項がないため、未決定のままになります。",
    },
    S.PREVIEW_MORE: {"other": "…ほか {n} 件"},
    S.PREVIEW_CONFIRM: "推奨事項を受け入れる",
    S.PREVIEW_CANCEL: "キャンセル",
    S.PREVIEW_NOTHING: "受け入れる推奨事項はもうありません。",
    S.REMINDER_TITLE: "リマインダー: {name}",
    S.REMINDER_LEFT: "残り {left} / {total} 件、期限: {due}",
    S.SNOOZE_TOMORROW: "明日に再通知",
    S.SNOOZE_4H: "4 時間後に再通知",
    S.ESCALATION_TITLE: "対応が必要なアクセス レビュー",
    S.ESCALATION_LINE: {
        "other": "**{who}** さんには未決定の項目が {n} 件あります (期限: {due})",
    },
    S.ESCALATION_REVIEW: "レビュー: {name}",
    S.ESCALATION_PROGRESS: "これまでに {total} 件中 {decided} 件を決定済み",
    S.ESCALATION_DUE: "期限: {date}（{relative}）",
    S.NUDGE: "リマインダーを送る",
    S.NUDGED_AT: "{who} さんにリマインダーを送信しました · {when}",
    S.UNKNOWN_REVIEWER: "レビュー担当者",
    S.PENDING_TITLE: "未完了のアクセス レビュー",
    S.PENDING_NONE: "未完了のアクセス レビューはありません。",
    S.PENDING_LINE: "残り {pending} / {total} 件 · 期限: {due}",
    S.PENDING_OPEN: "開く",
    S.PENDING_MORE: {
        "other": "…ほか {n} 件のレビューがあります。すべて見るにはマイ アクセスを開いてください。",
    },
    S.HELP_TITLE: "できること",
    S.HELP_INTRO: (
        "決定が必要なアクセス レビューをお送りし、期限の前にお知らせして、あなたの決定を"
        "あなたとして Microsoft Entra ID に記録します。"
    ),
    S.HELP_PENDING: "**保留中** — 未完了のアクセス レビューを一覧表示",
    S.HELP_SNOOZE: "**再通知** — 次の勤務日までリマインダーを一時停止",
    S.HELP_HELP: "**ヘルプ** — このメッセージを表示",
    S.HELP_CARDS: (
        "レビュー カードでは、項目ごとに「承認」「拒否」「わからない」を選ぶか、複数の項目を"
        "選択してまとめて決定するか、拒否される対象を確認してから推奨事項を受け入れることが"
        "できます。"
    ),
    S.SIGNIN_TITLE: "サインインが必要です",
    S.SIGNIN_SIGN_IN_REQUIRED: (
        "あなたとして決定を記録するため、Microsoft Entra ID に一度サインインしてください。"
    ),
    S.SIGNIN_CONSENT_REQUIRED: (
        "あなたとして決定を記録するには、このアプリがあなたの代わりにアクセス レビューを"
        "操作することへの同意が必要です。"
    ),
    S.SIGNIN_MFA_REQUIRED: (
        "決定を記録する前に、組織の要件により本人確認 (多要素認証) が必要です。"
    ),
    S.SIGNIN_BUTTON: "サインイン",
    S.SIGNIN_DONE: "サインインしました — 再試行",
    S.SIGNIN_NOTE: "決定はまだ記録されていません。",
    S.MSG_NOT_A_REVIEWER: "あなたはこの項目のレビュー担当者ではなくなりました。",
    S.MSG_ALREADY_DECIDED: "この項目は既に {detail} さんが決定しています。",
    S.MSG_REVIEW_ENDED: "このレビューは終了しました。決定を変更することはできません。",
    S.MSG_DECISION_SAVED: "決定を保存しました。",
    S.MSG_DECISION_FAILED: "決定を保存できませんでした。もう一度お試しください。",
    S.MSG_SAVING: "決定を保存しています… 記録されるとこのカードが更新されます。",
    S.MSG_JUSTIFICATION_REQUIRED: "このレビューでは、すべての決定に理由が必要です。",
    S.MSG_NOTHING_SELECTED: "まず 1 つ以上の項目を選択してください。",
    S.MSG_THROTTLED: (
        "Microsoft Entra ID が混み合っています。1 分ほどしてからもう一度お試しください。"
    ),
    S.MSG_SNOOZED: "承知しました。次のリマインダー: {at}",
    S.MSG_NUDGE_SENT: "{detail} さんにリマインダーを送信しました。",
    S.MSG_RECOMMENDATIONS_ACCEPTED: "推奨事項を受け入れました。",
    S.MSG_NO_PENDING_REVIEWS: "未完了のアクセス レビューはありません。",
    S.MSG_UNKNOWN_COMMAND: (
        "申し訳ありません。理解できませんでした。**ヘルプ** と入力すると、できることを確認"
        "できます。"
    ),
    S.MSG_FORBIDDEN: "この操作は許可されていません。",
    S.MSG_GENERIC_ERROR: "こちらで問題が発生しました。しばらくしてからもう一度お試しください。",
    S.MESSAGE_TITLE_INFO: "アクセス レビュー",
    S.MESSAGE_TITLE_SUCCESS: "完了",
    S.MESSAGE_TITLE_WARNING: "確認してください",
    S.MESSAGE_TITLE_ERROR: "問題が発生しました",
    S.BACK_TO_REVIEW: "レビューに戻る",
    S.BACK_TO_LIST: "自分のレビューに戻る",
    S.SUMMARY_REVIEW: "アクセス レビュー: {name}",
    S.SUMMARY_REMINDER: "リマインダー: {name}",
    S.SUMMARY_PENDING: "未完了のアクセス レビュー",
    S.SUMMARY_ESCALATION: "対応が必要なアクセス レビューがあります",
    S.COMMAND_PENDING: "保留中",
    S.COMMAND_HELP: "ヘルプ",
    S.COMMAND_SNOOZE: "再通知",
    S.COMMAND_TOMORROW: "明日",
    S.CHAT_WELCOME: (
        "こんにちは、Access Review Bot です。アクセス レビューであなたの決定が必要になったら、"
        "ここにお送りします。ワンクリックで承認または拒否できます。できることを確認するには "
        "**ヘルプ** と入力してください。"
    ),
    S.CHAT_HELP: (
        "Teams から離れずに Microsoft Entra のアクセス レビューを完了できるよう、お手伝い"
        "します。\n\n"
        "- **保留中**: 未完了のレビューと、それぞれの残り件数\n"
        "- **再通知 4h** または **再通知 明日**: しばらくリマインダーを減らす\n"
        "- **ヘルプ**: このメッセージ\n\n"
        "レビューであなたの対応が必要になると、カードをお送りします。承認、拒否、"
        "「わからない」をそれぞれワンクリックで選べます。"
    ),
    S.CHAT_NOT_UNDERSTOOD: "理解できませんでした。",
    S.CHAT_WHO_ARE_YOU: "あなたを識別できなかったため、レビューを一覧表示できません。",
    S.CHAT_SNOOZE_UNAVAILABLE: (
        "ここではリマインダーが動作していないため、一時停止するものはありません。"
    ),
    S.CHAT_SNOOZE_NOTHING_OPEN: (
        "未完了のレビューがないため、一時停止するリマインダーはありません。"
    ),
    S.CHAT_SNOOZE_USAGE: "**再通知 4h** または **再通知 明日** と入力してください。",
    S.CHAT_SNOOZE_NOTHING: "現在、一時停止するものはありません。",
    S.CHAT_SNOOZED_UNTIL: (
        "リマインダーを一時停止しました。次のリマインダーは {until} 以降です (期限前の最後の"
        "リマインダーより後にはなりません)。"
    ),
    S.CHAT_TURN_ERROR: "申し訳ありません。問題が発生しました。もう一度お試しください。",
    S.ERROR_UNSUPPORTED_BUTTON: "このボタンはサポートされていません。",
    S.ERROR_MALFORMED_CARD: (
        "このカードから読み取れないデータが送信されました。レビューを開き直してください。"
    ),
    S.ERROR_NOT_READY: "ボットを起動しています。しばらくしてからもう一度お試しください。",
    S.ERROR_BUSY: "ボットが混み合っているため、クリックを確認できませんでした。しばらくしてからもう一度お試しください。",
    S.ERROR_UNIDENTIFIED: "アカウントを識別できませんでした。",
    S.ERROR_SSO_NOT_CONFIGURED: "シングル サインオンが構成されていません。",
    S.ERROR_CONSENT_NEEDED: "ボットがあなたの代わりに操作するには、あなたの同意が必要です。",
    S.ERROR_SIGN_IN_TO_TEAMS: "Teams にサインインしてから、もう一度お試しください。",
    S.LOGIN_PROMPT: "決定をあなたとして記録するため、サインインしてください。",
    S.MSG_JUSTIFICATION_TOO_LONG: "理由が長すぎます。理由は {detail} 文字以内で入力してください。短くしてから、もう一度お試しください。",
    S.MSG_NUDGE_NOT_RECIPIENT: "リマインダーを送れるのは、あなた宛てにエスカレーションが送信されたレビュー担当者だけです。何も送信されていません。",
    S.REVIEW_APPLIED: "このレビューは終了し、結果が適用されました。",
    S.REVIEW_APPLYING: "このレビューは終了し、結果を適用しています。",
    S.REVIEW_AUTO_REVIEWED: "このレビューは終了しました。誰も決定しなかった項目は自動的に決定されました。",
    S.REVIEW_AUTO_REVIEWING: "このレビューは終了し、未決定の項目を自動的に決定しています。これ以上決定することはできません。",
    S.REVIEW_COMPLETING: "このレビューは完了処理中です。これ以上決定することはできません。",
    S.REVIEW_NOT_OPEN: "このレビューは現在、決定を受け付けていません。",
    S.REVIEW_NOT_STARTED: "このレビューはまだ開始されていません。開始後に決定できます。",
    S.REVIEW_STARTING: "このレビューは開始中です。数分後に決定できます。",
    S.STATUS_APPLIED: "適用済み",
    S.STATUS_APPLYING: "結果を適用中",
    S.STATUS_AUTO_REVIEWED: "自動的に決定済み",
    S.STATUS_AUTO_REVIEWING: "自動決定中 (これ以上決定できません)",
    S.STATUS_COMPLETED: "完了",
    S.STATUS_COMPLETING: "完了処理中 (これ以上決定できません)",
    S.STATUS_DELETED: "削除済み",
    S.STATUS_IN_PROGRESS: "進行中",
    S.STATUS_NOT_OPEN: "決定を受け付けていません ({status})",
    S.STATUS_NOT_STARTED: "未開始",
    S.STATUS_STARTING: "開始中",
}
