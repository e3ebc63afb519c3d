"""Synthetic complaint texts (zh_CN) for demo tickets: a subject and a description per
ticket category code, in the words customers use on the hotline, in chat and in web forms.

The texts come from slot-filled templates (cities, goods, days late, amounts, what the
courier did) with a tone from calm to angry. To look like a real desk — and to keep a text
classifier honest — some customers mention a second problem, some frame the ticket by that
second problem, some are vague, and neighbouring categories share words (a parcel "signed
for but not received" and a lost parcel both say 没收到). Deterministic for a
``numpy.random.Generator``; no personal data (no names, phone numbers or waybill numbers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Category codes of the default tree (migration 0010), parents first.
CATEGORIES: tuple[str, ...] = (
    "delay",
    "delay.transit",
    "delay.delivery",
    "damage",
    "damage.package",
    "damage.contents",
    "loss",
    "loss.whole",
    "loss.partial",
    "delivery",
    "delivery.wrong",
    "delivery.fake_sign",
    "delivery.not_to_door",
    "pickup",
    "pickup.missed",
    "service_attitude",
    "price",
    "price.overcharge",
    "product_quality",
    "other",
)

CITIES = (
    "北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆",
    "天津", "苏州", "郑州", "长沙", "沈阳", "青岛", "厦门", "昆明", "哈尔滨", "乌鲁木齐",
    "合肥", "济南", "福州", "南宁", "石家庄", "兰州", "贵阳", "宁波", "东莞", "佛山",
)  # fmt: skip
GOODS = (
    "手机", "笔记本电脑", "衣服", "鞋子", "化妆品", "茶叶", "水果", "月饼", "文件", "合同",
    "奶粉", "书", "耳机", "海鲜", "零食", "电饭煲", "儿童玩具", "相机", "床上用品", "保健品",
    "样品", "药品", "平板电脑", "键盘", "羽绒服",
)  # fmt: skip
FRAGILE = (
    "玻璃杯", "陶瓷花瓶", "显示器", "白酒", "红酒", "鱼缸", "茶具", "手机", "镜子", "相机镜头",
)  # fmt: skip
PLACES = ("驿站", "丰巢柜", "快递柜", "门卫室", "小区门口", "物业", "代收点", "楼下超市")
NORMAL_DAYS = ("两天", "三天", "次日", "两到三天")
FOOD = ("奶粉", "月饼", "零食", "保健品", "茶叶", "水果", "饼干", "咖啡")

# Tone: calm, impatient, angry — openers and closers.
OPENERS = (
    ("你好，", "您好，", "客服你好，", "麻烦问一下，", "", "", "打扰一下，"),
    ("都好几天了，", "我已经打了好几次电话了，", "能不能给个准话，", "第二次反映了，", ""),
    ("你们到底怎么回事！", "太气人了！", "真是无语了，", "简直离谱！", "气死我了！"),
)
CLOSERS = (
    ("麻烦帮忙查一下，谢谢。", "请尽快处理，谢谢。", "希望能给个答复。", "谢谢。", ""),
    ("今天之内必须给我答复。", "请尽快回电，别再拖了。", "希望这次能认真处理。", "等你们回复。"),
    (
        "再不处理我就向邮政管理局投诉！",
        "我要打12305投诉！",
        "不解决我就发微博曝光你们！",
        "必须给我一个说法！",
        "要求赔偿，否则找媒体！",
        "太差劲了，再也不用你们家了！",
    ),
)

# (subjects, descriptions) per leaf and per parent; a parent draws from its own and its
# children's templates.
TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "delay": (
        ("快递太慢了", "快件延误", "物流太慢", "迟迟收不到快递"),
        (
            "{goods}寄了{days}天还没到，比平时慢太多了。",
            "这个快递怎么这么慢，{days}天了还没收到。",
            "一直在等{goods}，时效完全没有保障。",
        ),
    ),
    "delay.transit": (
        (
            "物流信息{days}天没更新",
            "快件一直停在{city}",
            "中转太慢",
            "包裹卡在{city}转运中心不动了",
            "寄往{city2}的快件迟迟没到",
            "物流停滞",
        ),
        (
            "我从{city}寄到{city2}的{goods}，物流信息显示{days}天前到达{city}转运中心，之后就一直没有更新。",
            "{goods}寄出已经{days}天了，正常{norm}就能到，现在还在路上，查物流一直显示运输中。",
            "包裹在{city}分拨中心停了{days}天，打网点电话说在中转，也不知道什么时候能到。",
            "下单时说{norm}到，现在都{days}天了还没到{city2}，物流轨迹一直停在已发往{city2}。",
            "快件显示已揽收后就没动静了，{days}天没有任何物流更新。",
            "运单轨迹停在{city}中转场{days}天，客户一直在催，我们也没法交代。",
        ),
    ),
    "delay.delivery": (
        (
            "到了{city2}迟迟不派送",
            "承诺次日达却没送到",
            "派送延误",
            "快件到了网点{days}天不派",
            "说好今天送结果又没送",
        ),
        (
            "物流显示快件{days}天前就到了{city2}的网点，但一直没有派送，打电话给网点也没人接。",
            "包裹已经到了本地，显示派送中好几天了，就是不送，{goods}急着用。",
            "买的是次日达服务，结果第{days}天才派送，多付的钱算什么？",
            "快递员说今天下午送，等了一整天也没来，也没打电话说明。",
            "同城件，{days}天了还在网点，说是派送员人手不够。",
            "显示已到达派送网点，{days}天了还没有安排派送，{goods}是生鲜会坏的。",
        ),
    ),
    "damage": (
        ("快件破损", "收到的东西坏了", "包裹损坏", "破损问题"),
        (
            "收到的{goods}有破损，请处理。",
            "快递送来的时候就是坏的，{goods}没法用了。",
            "包裹破损严重，需要申请理赔。",
        ),
    ),
    "damage.package": (
        ("外包装破损", "箱子被压扁了", "收到包裹外箱破了", "包装被拆开过", "纸箱破损"),
        (
            "今天收到的包裹外箱被压得变形，胶带也开了，里面的{goods}暂时看没问题，但包装破损这么严重说明运输很粗暴。",
            "外包装破了一个大洞，{goods}的盒子也被划破，这是要送人的，现在没法送了。",
            "纸箱湿了一大片还破了角，怀疑运输途中泡水了。",
            "包裹外包装有明显被拆开重新封过的痕迹，胶带都不是原来的。",
            "外箱四个角都压瘪了，快递员说外包装破损不影响，但我担心里面的{goods}。",
        ),
    ),
    "damage.contents": (
        ("内件损坏", "{goods}收到时坏了", "易碎品碎了", "收到的{fragile}摔碎了", "内件破损"),
        (
            "寄的{fragile}，包装时做了充分的防护并且标注了易碎品，收到时里面已经碎了，价值{amount}元，要求理赔。",
            "开箱发现{goods}屏幕裂了，外包装看上去还好，肯定是运输过程中摔的。",
            "{fragile}碎成好几块，当着快递员的面开箱验货的，有照片和视频，保价了{amount}元。",
            "收到的{goods}被压坏了，已经无法使用，请按保价理赔。",
            "{fragile}到手就是碎的，箱子里全是碎片，价值{amount}元，怎么赔？",
        ),
    ),
    "loss": (
        ("快件丢了", "丢件", "包裹找不到了", "快递丢失"),
        (
            "我的快件丢了，里面是{goods}，请尽快给个处理结果。",
            "快递找不到了，网点说在查，一直没有结果。",
            "包裹不见了，要求按价值{amount}元赔偿。",
        ),
    ),
    "loss.whole": (
        ("快件丢失", "包裹丢了", "查不到快件", "丢件要求赔偿", "整件遗失"),
        (
            "{goods}寄出{days}天了，物流一直没有更新，网点说找不到了，这是丢件了吧？价值{amount}元。",
            "客服告诉我包裹在中转时遗失了，里面是{goods}，要求按保价赔偿{amount}元。",
            "寄给客户的{goods}不见了，查了好几次都说在找，到现在没有结果。",
            "快件在{city}转运中心之后就没了踪影，网点承认丢件，但理赔一直拖着。",
            "一直没收到{goods}，快递公司说包裹丢失了，申请理赔{amount}元。",
        ),
    ),
    "loss.partial": (
        ("内件短少", "少了一件", "箱子里东西不全", "收到的货少了", "包裹里东西被拿了"),
        (
            "寄了{n}件{goods}，收到只有{m}件，外包装有被划开的痕迹。",
            "包裹重量和寄出时对不上，少了{kg}公斤，里面的{goods}少了一部分。",
            "打开箱子发现少了两盒{goods}，寄件时清点过数量，快递单上也写了。",
            "收到的快件里面空了一半，怀疑中途被人拿走了东西。",
            "一共寄了{n}箱，只收到{m}箱，另外的没有任何物流信息。",
        ),
    ),
    "delivery": (
        ("派送问题", "快递员派送不规范", "派件有问题", "投递问题"),
        (
            "快递员派送很不规范，每次都随便放。",
            "这次的快件派送有问题，没按我的要求送。",
            "派件的时候没联系我，东西也不知道放哪了。",
        ),
    ),
    "delivery.wrong": (
        ("快递送错地址了", "错派", "包裹被送到别的小区", "投错了", "送错人了"),
        (
            "我的地址写得很清楚是{city2}某小区{bld}栋，结果快递员送到了隔壁小区，找了一个下午才找到。",
            "物流显示已签收，其实是送到了另一个{place}，不是我填的地址。",
            "快递被投到了别人家门口，邻居拿到后才联系上我。",
            "地址是公司，快递员却送到了{place}，也没有通知我。",
            "包裹被错派到{city}，现在又要转回来，耽误了好几天。",
        ),
    ),
    "delivery.fake_sign": (
        ("虚假签收", "显示已签收但我没收到", "没收到就签收了", "快递员代签", "未收到货显示签收"),
        (
            "物流显示今天上午已签收，签收人写的是本人，可是我全天都在家根本没有人送过来。",
            "我没有收到快件，快递员就点了签收，打电话问他说放{place}了，去找也没有。",
            "快递员未经同意虚假签收，还说是我让放的，根本没有这回事。",
            "系统显示已签收，签收人是门卫，但门卫说没见过这个包裹。",
            "{goods}显示已签收{days}天了，我一直没收到，快递员也不承认。",
        ),
    ),
    "delivery.not_to_door": (
        ("不送货上门", "快递员不送上楼", "直接放驿站", "没经同意放快递柜", "要求送货上门"),
        (
            "我付了运费是送货上门的，快递员不打电话直接放到{place}，{goods}那么重让我自己去搬。",
            "每次都不送上门，直接扔{place}，发个短信就算完事。",
            "家里有老人不方便下楼，跟快递员说好送上门，结果还是放在{place}。",
            "没有经过我同意就把快件放进了{place}，还收了我超时费。",
            "快递员说不送上楼，让我自己去{place}拿，这算什么服务？",
        ),
    ),
    "pickup": (
        ("寄件问题", "揽收问题", "取件不及时"),
        (
            "想寄个{goods}到{city2}，一直没人来收件。",
            "揽收太不及时了，网点总说没空。",
            "寄件很麻烦，约了也不来。",
        ),
    ),
    "pickup.missed": (
        ("预约取件没人来", "上门揽收迟迟不来", "寄件没人取", "约了取件被放鸽子", "揽收超时"),
        (
            "昨天下午在小程序上预约了上门取件，约的时间是{hour}点到{hour2}点，一直等到晚上都没人来。",
            "预约了{n}次取件，每次都说马上到，最后都没来，东西急着寄到{city2}。",
            "快递员接单后不联系也不上门，过了几个小时订单自己取消了。",
            "下单寄件之后显示已分配快递员，但是一直没人来揽收，打电话也不接。",
            "约好{hour}点上门取{goods}，快递员拖到第二天才来，耽误了发货。",
        ),
    ),
    "service_attitude": (
        ("快递员态度恶劣", "客服态度差", "快递员骂人", "服务态度极差", "投诉网点工作人员"),
        (
            "打电话问快递什么时候到，快递员很不耐烦，说话很冲，还直接挂了我电话。",
            "快递员送件时态度很差，我只是让他等一下开门，他就开始骂人。",
            "打客服热线转了好几次，客服一直在敷衍，问什么都说不知道。",
            "网点工作人员态度傲慢，问个问题爱答不理的。",
            "快递员嫌我东西多，当着我的面摔包裹，还说难听的话。",
        ),
    ),
    "price": (
        ("运费咨询", "保价费怎么收", "运费标准", "价格问题", "咨询寄件价格"),
        (
            "想问一下寄{kg}公斤{goods}到{city2}运费是多少，保价怎么收费？",
            "寄到{city2}的首重和续重价格是多少？能不能月结？",
            "为什么这次的运费比上次贵了那么多，同样的重量同样的地方。",
            "请问代收货款的手续费是怎么算的？",
            "保价{amount}元的话保价费是多少？",
        ),
    ),
    "price.overcharge": (
        ("多收运费", "运费收错了", "乱收费", "实际重量和计费重量不符", "重复扣费"),
        (
            "寄件时称重{kg}公斤，结果账单上按{kg2}公斤收的费，多收了{small}元。",
            "说好的运费{small}元，结果扣了我{small2}元，还多收了包装费。",
            "快递员上门取件收了我{small}元，和官网价格不一样，也不给小票。",
            "月结账单里有几笔运费重复扣款，合计多收了{amount}元。",
            "到付件快递员多收了{small}元，说是派送费，之前从来没有过。",
        ),
    ),
    "product_quality": (
        ("商品质量问题", "收到的{goods}有质量问题", "货不对板", "{goods}是坏的", "收到次品"),
        (
            "网上买的{goods}收到后发现是次品，和商品描述不一样，包装完好，是商家的问题吧？",
            "买的{goods}用了一天就坏了，想问一下快递这边能不能协助退货。",
            "收到的{food}已经过期了，生产日期是去年的。",
            "{goods}颜色和尺码都不对，商家说发的是对的。",
            "{goods}有异味，质量很差，想退货怎么办理？",
        ),
    ),
    "other": (
        ("能否修改收件地址", "咨询问题", "发票问题", "其他问题", "怎么办理退件", "节假日派送咨询"),
        (
            "快件还没派送，能不能帮我把收件地址改到{city2}？",
            "想开一张运费发票，在哪里申请？",
            "我想取消寄件，已经下单了怎么办？",
            "请问节假日期间还正常派送吗？",
            "会员积分怎么兑换？",
            "想问下能不能寄{goods}到国外？",
            "怎么查询我名下的所有运单？",
        ),
    ),
}

# A short clause about another problem, for customers who mention two.
SIDE_ISSUES: dict[str, tuple[str, ...]] = {
    "delay": ("而且物流也慢了{days}天。", "另外这个件比承诺时间晚到了。"),
    "damage": ("另外外包装也破了。", "而且箱子都压坏了。"),
    "loss": ("里面还少了东西。",),
    "delivery": ("而且也没送上门，直接放{place}了。", "还被送错了地方。"),
    "pickup": ("上次寄件也是约了没人来。",),
    "service_attitude": ("另外快递员态度也很差。", "打客服电话也一直敷衍我。"),
    "price": ("还多收了运费。", "运费也比说好的贵。"),
    "product_quality": ("东西本身质量也一般。",),
}

VAGUE_SUBJECTS = (
    "投诉",
    "快递问题",
    "请处理一下",
    "问题反馈",
    "急！！！",
    "投诉快递",
    "关于我的快件",
)
VAGUE_DESCRIPTIONS = (
    "你们的快递服务太差了，希望改进。",
    "快件有问题，麻烦联系我。",
    "上次反映的问题还是没解决。",
    "这个单子有问题，请尽快处理。",
    "我的快递出了问题，请给我回电。",
    "对这次服务很不满意。",
)

# How often each twist happens (fractions of tickets).
VAGUE_RATE = 0.06
SIDE_ISSUE_RATE = 0.15
CONFUSED_RATE = 0.08  # told in the words of a neighbouring category
SIDE_SUBJECT_RATE = 0.3  # of those with a side issue, the subject is about the side issue
TONE_WEIGHTS = np.array([0.5, 0.3, 0.2])


def _pick(items: Sequence[str], u: float) -> str:
    """The item a uniform draw in [0, 1) falls on."""
    return items[min(int(u * len(items)), len(items) - 1)]


def _templates(code: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Subjects and descriptions for a code: a parent pools its children's; a code not in
    the default tree (an administrator's own) falls back to its parent, then to other."""
    if code not in TEMPLATES:
        parent = code.split(".", 1)[0]
        code = parent if parent in TEMPLATES else "other"
    subjects, descriptions = TEMPLATES[code]
    if "." not in code:
        for child, (s, d) in TEMPLATES.items():
            if child.startswith(code + "."):
                subjects, descriptions = subjects + s, descriptions + d
    return subjects, descriptions


# Categories customers describe in each other's words: a parcel left at the station is
# "late" to one customer and "not delivered to the door" to the agent; a falsely signed
# parcel is often simply lost; a broken item may be the seller's fault.
CONFUSABLE: dict[str, tuple[str, ...]] = {
    "delay": ("delivery.not_to_door", "loss.whole", "pickup.missed"),
    "damage": ("product_quality", "loss.partial"),
    "loss": ("delivery.fake_sign", "delay.transit", "delivery.wrong"),
    "delivery": ("delay.delivery", "loss.whole", "service_attitude"),
    "pickup": ("service_attitude", "delay.transit"),
    "service_attitude": ("delivery.not_to_door", "pickup.missed", "delay.delivery"),
    "price": ("other", "damage.contents"),
    "product_quality": ("damage.contents", "other"),
    "other": ("price", "delay.delivery", "product_quality"),
}

_CACHE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
_SIDE_KEYS = tuple(SIDE_ISSUES)


def _slots(u: np.ndarray) -> dict[str, object]:
    """Slot values from uniform draws (one vector per text keeps generation to one rng
    call per ticket)."""
    n = 2 + int(u[5] * 9)
    kg = 1 + int(u[6] * 20)
    small = 12 + int(u[7] * 60)
    hour = 9 + int(u[8] * 8)
    # Amounts spread over three orders of magnitude, as declared values do.
    amount = int(round(10 ** (1.7 + u[9] * 2.7), -1))
    return {
        "city": _pick(CITIES, u[0]),
        "city2": _pick(CITIES, (u[0] + 0.37 + 0.5 * u[1]) % 1.0),
        "goods": _pick(GOODS, u[2]),
        "fragile": _pick(FRAGILE, u[3]),
        "food": _pick(FOOD, u[3]),
        "place": _pick(PLACES, u[4]),
        "days": 3 + int(u[10] * 10),
        "norm": _pick(NORMAL_DAYS, u[11]),
        "n": n,
        "m": max(1, n - 1 - int(u[12] * (n - 1))),
        "kg": kg,
        "kg2": kg + 1 + int(u[12] * 4),
        "small": small,
        "small2": small + 5 + int(u[13] * 40),
        "hour": hour,
        "hour2": hour + 2,
        "amount": amount,
        "bld": 1 + int(u[13] * 30),
    }


def complaint_text(code: str, rng: np.random.Generator) -> tuple[str, str]:
    """One (subject, description) for a ticket of category ``code``."""
    u = rng.random(26)
    slots = _slots(u)
    tone = int(np.searchsorted(np.cumsum(TONE_WEIGHTS), u[14], side="right"))
    tone = min(tone, 2)
    if u[15] < VAGUE_RATE:
        subject = _pick(VAGUE_SUBJECTS, u[16])
        body = _pick(VAGUE_DESCRIPTIONS, u[17])
    else:
        told = code
        if u[24] < CONFUSED_RATE:
            told = _pick(CONFUSABLE.get(code.split(".", 1)[0], ("other",)), u[25])
        if told not in _CACHE:
            _CACHE[told] = _templates(told)
        subjects, descriptions = _CACHE[told]
        subject = _pick(subjects, u[16]).format(**slots)
        body = _pick(descriptions, u[17]).format(**slots)
        if u[18] < SIDE_ISSUE_RATE:
            top = code.split(".", 1)[0]
            others = [k for k in _SIDE_KEYS if k != top]
            side = _pick(others, u[19])
            body += _pick(SIDE_ISSUES[side], u[20]).format(**slots)
            if u[21] < SIDE_SUBJECT_RATE:
                # The customer leads with the second problem; the agent filed it under
                # the main one.
                subject = _pick(_templates(side)[0], u[22]).format(**slots)
    opener = _pick(OPENERS[tone], u[23])
    closer = _pick(CLOSERS[tone], (u[23] * 7.31) % 1.0)
    if tone == 2:
        subject += "！"
    return subject, opener + body + closer


def complaint_texts(categories: Sequence[str], rng: np.random.Generator) -> list[tuple[str, str]]:
    """(subject, description) in zh_CN customer-service language for each category code,
    in order. Codes outside the default tree fall back to their parent, then to
    ``other``."""
    return [complaint_text(code, rng) for code in categories]
