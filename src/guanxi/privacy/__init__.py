"""Personal-information protection (PIPL, 个人信息保护法): data-subject requests (access,
copy, correction, deletion as anonymisation), the record of processing, field purposes and
retention purges."""
