"""The word lists of ``insights.terms``: content tags, intent markers, synonyms, stop words.

Chosen on ``tests/data/question_groups.tsv`` and the errors of
``tests/data/question_groups_holdout.tsv``; general words of support questions, never
entries for one labelled question.
"""

from __future__ import annotations

import re

# Kiwi's part-of-speech tags that carry what a question is about.
CONTENT_TAGS = frozenset(
    {"NNG", "NNP", "NR", "SL", "SN", "SH", "XR", "VV", "VA", "VV-I", "VA-I", "VV-R", "VA-R", "MAG"}
)

# Intent markers: words (Korean lemma or English stem) that say what is asked about a topic.
# They are kept as one token per intent, so paraphrases of the intent agree.
INTENTS: dict[str, str] = {
    # how (procedure)
    "어떻": "~how",
    "방법": "~how",
    "절차": "~how",
    "법": "~how",
    "사용법": "~how",
    "how": "~how",
    "어떡하": "~how",
    "step": "~how",
    # when (date, deadline)
    "언제": "~when",
    "기한": "~when",
    "마감일": "~when",
    "마감": "~when",
    "날짜": "~when",
    "when": "~when",
    "date": "~when",
    "일정": "~when",
    "언제까지": "~when",
    "deadlin": "~when",
    "due": "~when",
    "schedul": "~when",
    # how long / how many days
    "기간": "~howlong",
    "며칠": "~howlong",
    "일수": "~howlong",
    "얼마나": "~howlong",
    "howlong": "~howlong",
    "length": "~howlong",
    "durat": "~howlong",
    # how much (money)
    "얼마": "~howmuch",
    "금액": "~howmuch",
    "howmuch": "~howmuch",
    "비용": "~howmuch",
    "요금": "~howmuch",
    "가격": "~howmuch",
    "amount": "~howmuch",
    "cost": "~howmuch",
    "price": "~howmuch",
    "fee": "~howmuch",
    # how many (times)
    "몇": "~howmany",
    "횟수": "~howmany",
    "howmany": "~howmany",
    # how often
    "주기": "~howoften",
    "howoften": "~howoften",
    "frequenc": "~howoften",
    # something is wrong: a problem report, not a how-to
    "오류": "~problem",
    "안": "~problem",
    "끊기": "~problem",
    "error": "~problem",
    "disconnect": "~problem",
    "crash": "~problem",
    "fail": "~problem",
    "broken": "~problem",
    "걸리": "~problem",
    "안되": "~problem",
    "않": "~problem",
    # where
    # where to do something is asked as how to do it ("예약은 어디서 하나요" = "예약 방법")
    "어디": "~how",
    "where": "~how",
    "어디서": "~how",
}

# Intents that say what is asked; "~how" is not among them, since "휴가 신청" asks the
# same as "휴가 신청 방법": a question without one of these agrees only with another without.
SPECIFIC_INTENTS = frozenset({"~when", "~howlong", "~howmuch", "~howmany", "~howoften", "~problem"})

# What "얼마나" asks, by the word after it.
HOW_MUCH_OR_LONG: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("걸리", "오래", "쓰", "되", "가능", "기다리"), ("~howlong",)),
    **dict.fromkeys(("받", "나오", "주", "들", "지원", "내", "들어오", "지급"), ("~howmuch",)),
}
DURATION_WORDS = frozenset({"얼마나", "며칠", "시간", "기간", "오래", "몇", "일", "주", "달"})

# Everyday synonyms of support questions, folded onto one word ("reset" is "reset").
SYNONYMS: dict[str, str] = {
    "재설정": "초기",  # Kiwi reads "초기화" as "초기" + the suffix "화"
    "리셋": "초기",
    "조회": "확인",
    "요청": "신청",
    "접수": "신청",
    "패스워드": "비밀번호",
    "비번": "비밀번호",
    "wifi": "와이파이",
    "방식": "방법",
    "월급": "급여",
    "에러": "error",
    "잃어버리": "분실",
    "잃": "분실",
    "lose": "lost",
    "lost": "lost",
    "request": "appli",
    "applic": "appli",
    "잔여": "남",
    "see": "check",
    "view": "check",
    "sign": "appli",
    "signup": "appli",
    "regist": "appli",
    "registr": "appli",
    "submiss": "submit",
    "issuanc": "issu",
    "payment": "pay",
    "enrol": "appli",
}

# Words that ask nothing by themselves: politeness, "tell me", "I am curious", fillers.
KOREAN_STOP = frozenset(
    {
        "알리",
        "주",
        "궁금",
        "궁금하",
        "하",
        "되",
        "있",
        "없",
        "이",
        "그",
        "저",
        "것",
        "거",
        "수",
        "좀",
        "뭐",
        "무엇",
        "가능",
        "필요",
        "싶",
        "받",
        "보",
        "나오",
        "들어오",
        "쓰",
        "해주",
        "문의",
        "질문",
        "회사",
        "사내",
        "본인",
        "저희",
        "우리",
        "혹시",
        "제",
        "내",
        "나",
        "요",
    }
)
ENGLISH_STOP_WORDS = (
    "a an the i me my we our you your it is are was were be been do does did can could should would "
    "will to of for in on at from with by and or if what which who whom this that these those there "
    "get got need want please tell about any some all per up out into off one take keep"
)
ENGLISH_STOP = frozenset(ENGLISH_STOP_WORDS.split())
WORD = re.compile(r"[a-z0-9]+")
ENGLISH_INTENT = re.compile(r"\bhow (long|many|much|often)\b|\bwhat (day|date)\b")
# "how many days/weeks" asks how long, as "며칠" does
ENGLISH_DURATION = re.compile(r"\bhow many\b(?=(?: [a-z]+){0,3}? (?:days|weeks|months|years|hours)\b)")
# Phrasal verbs as one word, so "set up" and "setup" agree ("setting up" too).
PHRASAL_VERBS = {"set": "set", "sets": "set", "setting": "set", "sign": "sign", "signs": "sign",
                  "signing": "sign", "log": "log", "logs": "log", "logging": "log"}
PHRASAL = re.compile(r"\b(" + "|".join(PHRASAL_VERBS) + r")\s+(up|in|on)\b")
