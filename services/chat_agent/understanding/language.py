"""Which of the supported languages (shared.events.LANGUAGES) a message is written in."""

from __future__ import annotations

import re

# Any kana or kanji means Japanese; customers writing Chinese are not expected here.
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_WORD = re.compile(r"[a-z]+")


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Frequent function words and chat slang; content words shared by both languages
# (onigiri, promo, stop) are left out on purpose.
_ID_WORDS = _wordset(
    """
    ada aja aku apa atau bagaimana banget banyak baru beli belum berapa berhenti bisa bosen
    buat cara cuaca dan dapat dari deh di dingin dong enak gak ga gimana gitu hari harga hai
    halo hujan ini itu jam jangan jual juga kak kakak kalau kamu kan kapan kasih kenapa kepake
    kirim kok kopi kupon lagi langganan lah makasih makasi malam mana mau minta minuman mulai
    nggak ngga nih nomor nya pagi pakai panas pesan punya roti saya selamat sama sih siang
    sore suka sudah tapi terima tidak tolong trims udah untuk yang ya yuk wkwk wkwkwk
    aja dong kok deh sih kah lho loh mantap oke sip terimakasih tengkyu kue jajan
    adalah akan anda apakah atas bagus bantu bantuan bapak begitu benar besok bikin boleh bukan
    butuh cuma dengan dulu habis hallo haloo hei jadi jelek kabar kali kami kapan karena kartu
    kemarin kenal kerja kita kurang lama lebih lewat masih masuk mereka nanti ngapain nonton
    pedas permisi pernah pesan saja salam satu selalu semua sedang sekali sekarang setiap sini
    situ tadi tahu tanya teman tentang terus tiap toko waktu akun assalamualaikum hatur nuhun
    """
)
_EN_WORDS = _wordset(
    """
    a about am an and any anything are at be bye can coffee could day deal deals do does
    dont don for from get good got hello help hey hi how i im in is it its just like me
    morning my no not of on or please pls sell so thank thanks that the there this to today
    u want was what when where which will with would yes you your yo thx ty
    """
)
# Indonesian suffixes (-nya, -kan, -lah) mark words the lists above cannot enumerate.
_ID_SUFFIX = re.compile(r"[a-z]{3,}(?:nya|kan|lah|kah)$")


def detect_language(text: str) -> str | None:
    """Return 'ja', 'en' or 'id' for normalised text, or None when there is no signal."""
    if _JAPANESE.search(text):
        return "ja"
    words = _WORD.findall(text)
    if not words:
        return None
    id_score = float(sum(w in _ID_WORDS for w in words))
    id_score += 0.5 * sum(bool(_ID_SUFFIX.fullmatch(w)) and w not in _EN_WORDS for w in words)
    en_score = sum(w in _EN_WORDS for w in words)
    if id_score == en_score == 0:
        return None
    # Ties go to Indonesian: its markers (kak, dong, ya) are rarer in English than
    # English loanwords (thanks, stop) are in Indonesian chat.
    return "id" if id_score >= en_score else "en"
