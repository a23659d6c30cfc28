"""Japanese and English (docs/console.md § Pages): the language of a request, the
words of the pages, and numbers, money and times formatted for the locale with Babel, times
in the retailer's time zone.

The English text is the key (as gettext's msgid); `JA` holds the Japanese of each. A text
without a Japanese entry shows in English rather than failing.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal
from flask import Request

LANGUAGES = ("ja", "en")
LANG_COOKIE = "console_lang"
LOCALES = {"ja": "ja_JP", "en": "en_US"}
MISSING = "–"


def choose_language(request: Request) -> str:
    """The switch's cookie, else the best of Accept-Language, else Japanese."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "ja"


def translate(text: str, lang: str) -> str:
    return JA.get(text, text) if lang == "ja" else text


def yen(value: float | int | None, lang: str) -> str:
    """Money for people: ¥1,234 (en) or ￥1,234 (ja, as CLDR writes it); – when none."""
    if value is None:
        return MISSING
    return format_currency(round(value), "JPY", locale=LOCALES[lang])


def number(value: float | int | None, lang: str, digits: int = 0) -> str:
    if value is None:
        return MISSING
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=LOCALES[lang])


def when(value: str | datetime | None, lang: str, zone: ZoneInfo) -> str:
    """A timestamp in the retailer's time zone, written for the locale."""
    if value is None or value == "":
        return MISSING
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_datetime(moment, "yyyy-MM-dd HH:mm", tzinfo=zone, locale=LOCALES[lang])


JA: dict[str, str] = {
    "Skip to content": "本文へ移動",
    "tenin console": "tenin コンソール",
    "Campaigns": "キャンペーン",
    "New campaign": "新しいキャンペーン",
    "Explain a decision": "判断の説明",
    "Statements": "明細書",
    "Model": "モデル",
    "Sign in": "サインイン",
    "Sign out": "サインアウト",
    "Signed out.": "サインアウトしました。",
    "Marketer key": "マーケター用キー",
    "This key is not a marketer key.": "このキーはマーケター用ではありません。",
    "This key was not accepted.": "このキーは受け付けられませんでした。",
    "Enter your marketer key.": "マーケター用キーを入力してください。",
    "Too many failed sign-ins. Try again in {n} seconds.": "サインインの失敗が多すぎます。{n}秒後にもう一度お試しください。",
    "Your session has ended. Sign in again.": "セッションが終了しました。もう一度サインインしてください。",
    "Language": "言語",
    "Status": "状態",
    "All": "すべて",
    "draft": "下書き",
    "active": "実施中",
    "paused": "一時停止",
    "ended": "終了",
    "Search": "検索",
    "Filter": "絞り込む",
    "Name": "名前",
    "Window": "期間",
    "Issued": "発行",
    "Redeemed": "利用",
    "Incremental revenue": "増分売上",
    "Share owed": "支払うレベニューシェア",
    "No campaigns match.": "該当するキャンペーンはありません。",
    "No report yet: the campaign has not been activated.": "レポートはまだありません：キャンペーンは開始されていません。",
    "Save draft": "下書きを保存",
    "Save changes": "変更を保存",
    "Edit campaign": "キャンペーンを編集",
    "Edit": "編集",
    "Campaign saved.": "キャンペーンを保存しました。",
    "There is a problem": "入力に問題があります",
    "Starts at": "開始日時",
    "Ends at": "終了日時",
    "Holdout %": "ホールドアウト %",
    "Revenue share %": "レベニューシェア %",
    "Revenue share basis": "レベニューシェアの基準",
    "attributed": "帰属売上",
    "incremental": "増分売上",
    "Per-call fee (¥)": "判断ごとの料金 (¥)",
    "Message cost (¥)": "メッセージ費用 (¥)",
    "Pacing": "ペース配分",
    "even": "均等",
    "asap": "できるだけ早く",
    "Budget": "予算",
    "Max coupons": "クーポン上限",
    "Max redemptions": "利用上限",
    "Max discount total (¥)": "割引総額の上限 (¥)",
    "Caps per customer": "お客様ごとの上限",
    "Per customer per day": "1日あたり",
    "Per customer total": "期間合計",
    "Audience": "対象",
    "Languages": "言語",
    "Linked cards only": "会員カード連携済みのみ",
    "Bought categories": "購入カテゴリ",
    "comma-separated": "カンマ区切り",
    "empty = no limit": "空欄 = 上限なし",
    "Offer {n}": "オファー {n}",
    "Title": "タイトル",
    "Discount type": "割引の種類",
    "amount": "金額",
    "percent": "割合",
    "free_item": "無料商品",
    "Discount value": "割引の値",
    "Applies to": "対象商品",
    "categories": "カテゴリ",
    "skus": "SKU",
    "Categories or SKUs": "カテゴリまたは SKU",
    "Minimum basket (¥)": "最低購入額 (¥)",
    "Valid hours": "有効時間",
    "Fixed once the campaign has run": "開始後は変更できません",
    "May only be lowered": "下げることのみできます",
    "Live report": "ライブレポート",
    "Decisions": "判断数",
    "Attributed revenue": "帰属売上",
    "Discount cost": "割引額",
    "Per-call fee would have earned": "判断ごとの料金なら",
    "Coupons per day": "日別クーポン",
    "Treatment against holdout": "施策群とホールドアウト群",
    "Revenue share against per-call fee": "レベニューシェアと判断ごとの料金",
    "Activate": "開始",
    "Pause": "一時停止する",
    "End": "終了する",
    "Forecast": "予測",
    "Cancel": "キャンセル",
    "Activate campaign?": "キャンペーンを開始しますか？",
    "Pause campaign?": "キャンペーンを一時停止しますか？",
    "End campaign?": "キャンペーンを終了しますか？",
    "Yes, activate": "はい、開始します",
    "Yes, pause": "はい、一時停止します",
    "Yes, end": "はい、終了します",
    "Customers can get its coupons from now on.": "これからお客様にクーポンが配られます。",
    "No new coupons go out until you activate it again; issued coupons stay valid.": "再開するまで新しいクーポンは配られません。発行済みのクーポンは有効なままです。",
    "Ending is final: no new coupons, and it cannot be activated again.": "終了は取り消せません。新しいクーポンは配られず、再開もできません。",
    "Campaign activated.": "キャンペーンを開始しました。",
    "Campaign paused.": "キャンペーンを一時停止しました。",
    "Campaign ended.": "キャンペーンを終了しました。",
    "Run forecast": "予測を実行",
    "Estimate": "推定",
    "Low": "下限",
    "High": "上限",
    "Eligible audience": "対象のお客様",
    "Coupons": "クーポン",
    "Redemptions": "利用",
    "Revenue share": "レベニューシェア",
    "Budget burn": "予算の消化",
    "What it rests on": "予測の根拠",
    "Confidence": "信頼度",
    "Drops": "一斉配信",
    "Max messages": "最大メッセージ数",
    "Send after": "送信開始",
    "Dry run": "試算のみ",
    "Start drop": "配信を開始",
    "Cancel drop": "配信を中止",
    "Drop started.": "配信を開始しました。",
    "Drop cancelled.": "配信を中止しました。",
    "Drop progress": "配信の進み具合",
    "Drops are not available yet.": "一斉配信はまだ利用できません。",
    "Not available yet.": "まだ利用できません。",
    "Decision id": "判断 ID",
    "Coupon code": "クーポンコード",
    "Explain": "説明する",
    "Why": "理由",
    "Candidates": "候補",
    "Features": "特徴",
    "No decision found for this coupon code.": "このクーポンコードの判断は見つかりません。",
    "Give a decision id or a coupon code.": "判断 ID かクーポンコードを入力してください。",
    "Campaign": "キャンペーン",
    "Month": "月",
    "Show statement": "明細書を表示",
    "Statement": "明細書",
    "Download CSV": "CSV をダウンロード",
    "Serving": "使用中",
    "Gate verdicts": "判定の結果",
    "Request refused": "リクエストを拒否しました",
    "Page not found": "ページが見つかりません",
    "A service did not answer": "サービスが応答しません",
    "Something went wrong": "問題が発生しました",
    "Dry run: {eligible} eligible, {coupons} coupons, {messages} messages.": "試算：対象 {eligible} 人、クーポン {coupons} 枚、メッセージ {messages} 通。",
    "No quiet hours": "配信停止時間なし",
    "Eligible": "対象",
    "Decided": "判断済み",
    "Pushed": "送信済み",
    "Failed": "失敗",
    "Remaining": "残り",
    "queued": "待機中",
    "running": "配信中",
    "waiting_quiet_hours": "配信停止時間の終了待ち",
    "done": "完了",
    "cancelled": "中止",
    "failed": "失敗",
    "Requests": "リクエスト",
    "Treated": "施策群",
    "Holdout": "ホールドアウト",
    "low": "低",
    "medium": "中",
    "high": "高",
    "Followed within (days)": "友だち追加からの日数（以内）",
    "Visits per week at least": "週の来店回数（以上）",
    "Visits per week at most": "週の来店回数（以下）",
    "Average basket at least (¥)": "平均購入額（以上）(¥)",
    "Average basket at most (¥)": "平均購入額（以下）(¥)",
}
