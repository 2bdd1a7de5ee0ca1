"""A zoo of small architectures beside BERT (used by generate.py): random weights, the module
names of their usual implementations (Hugging Face's transformers, torchvision-style ViT,
the PyTorch tutorial's LSTM classifier), traced in eval mode and saved as models/zoo_NAME.pt.

What graph-mode dynamic quantization makes of each (PyTorch 1.13 and 2.6 alike):
- albert: one layer group shared by every depth, so its Linears are called once per depth
  (the tracer unrolls the loop); factorized embeddings (a Linear from the embedding size to
  the hidden size).
- distilbert: q_lin/k_lin/v_lin/out_lin, lin1/lin2, no token types.
- roberta: position ids from the input (cumsum of the non-padding mask, offset by the padding
  index); a classification head of dense + out_proj.
- electra: small embeddings projected up by `embeddings_project`.
- gpt2: Conv1D layers, which are `addmm(bias, x, weight)` with the weight stored [in, out];
  PyTorch's FuseLinear only turns addmm on a *transposed* weight into aten::linear, so these
  stay float in graph mode (only `lm_head`, tied to `wte`, is a Linear).
- t5: bias-free Linears q/k/v/o and wi/wo, T5LayerNorm (a weight, no bias, RMS), and the
  relative position bias (an Embedding looked up with bucketed relative positions).
- vit: a Conv2d patch projection (not dynamically quantizable), cls token and position
  embeddings as parameters, then BERT-like layers.
- lstm: Embedding + LSTM + Linear; aten::lstm is not quantized by graph mode (eager
  quantize_dynamic handles nn.LSTM; graph mode only aten::linear).
"""
import math

import torch
from torch import nn
import torch.nn.functional as F

import minibert

H, HEADS, INTER, VOCAB, MAXPOS, LAYERS = 32, 4, 64, 96, 40, 2


def _init(model):
    """Hugging Face-like initialisation: normal(0, 0.02) matrices, zero biases, unit norms."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Embedding, nn.Conv2d)):
                m.weight.normal_(0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
        for name, p in model.named_parameters():
            if name.endswith("c_attn.weight") or name.endswith("c_proj.weight") or name.endswith("c_fc.weight"):
                p.normal_(0.0, 0.02)
    return model


def _heads(x, n):
    b, s, h = x.size()
    return x.view(b, s, n, h // n).permute(0, 2, 1, 3)


def _merge(x):
    b, n, s, d = x.size()
    return x.permute(0, 2, 1, 3).contiguous().view(b, s, n * d)


def _mask(attention_mask):
    return (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min


# ------------------------------------------------------------------------------------ ALBERT
class AlbertEmbeddings(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, e, padding_idx=0)
        self.position_embeddings = nn.Embedding(MAXPOS, e)
        self.token_type_embeddings = nn.Embedding(2, e)
        self.LayerNorm = nn.LayerNorm(e, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(MAXPOS).expand((1, -1)))

    def forward(self, input_ids, token_type_ids):
        pos = self.position_ids[:, :input_ids.size(1)]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x + self.position_embeddings(pos))


class AlbertAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)
        self.dense = nn.Linear(H, H)
        self.LayerNorm = nn.LayerNorm(H, eps=1e-12)

    def forward(self, x, mask):
        q, k, v = _heads(self.query(x), HEADS), _heads(self.key(x), HEADS), _heads(self.value(x), HEADS)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(H // HEADS) + mask
        ctx = _merge(torch.matmul(scores.softmax(-1), v))
        return self.LayerNorm(x + self.dense(ctx))


class AlbertLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = AlbertAttention()
        self.ffn = nn.Linear(H, INTER)
        self.ffn_output = nn.Linear(INTER, H)
        self.full_layer_layer_norm = nn.LayerNorm(H, eps=1e-12)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.full_layer_layer_norm(self.ffn_output(F.gelu(self.ffn(a))) + a)


class AlbertLayerGroup(nn.Module):
    def __init__(self):
        super().__init__()
        self.albert_layers = nn.ModuleList([AlbertLayer()])

    def forward(self, x, mask):
        for layer in self.albert_layers:
            x = layer(x, mask)
        return x


class AlbertTransformer(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.embedding_hidden_mapping_in = nn.Linear(e, H)
        self.albert_layer_groups = nn.ModuleList([AlbertLayerGroup()])

    def forward(self, x, mask):
        x = self.embedding_hidden_mapping_in(x)
        for _ in range(3):  # num_hidden_layers 3, num_hidden_groups 1: the same group each time
            x = self.albert_layer_groups[0](x, mask)
        return x


class AlbertModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = AlbertEmbeddings(16)
        self.encoder = AlbertTransformer(16)
        self.pooler = nn.Linear(H, H)
        self.pooler_activation = nn.Tanh()

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.encoder(self.embeddings(input_ids, token_type_ids), _mask(attention_mask))
        return x, self.pooler_activation(self.pooler(x[:, 0]))


class AlbertForSequenceClassification(nn.Module):
    def __init__(self):
        super().__init__()
        self.albert = AlbertModel()
        self.classifier = nn.Linear(H, 2)

    def forward(self, input_ids, attention_mask, token_type_ids):
        return (self.classifier(self.albert(input_ids, attention_mask, token_type_ids)[1]),)


# -------------------------------------------------------------------------------- DistilBERT
class DistilEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, H, padding_idx=0)
        self.position_embeddings = nn.Embedding(MAXPOS, H)
        self.LayerNorm = nn.LayerNorm(H, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(MAXPOS).expand((1, -1)))

    def forward(self, input_ids):
        pos = self.position_ids[:, :input_ids.size(1)]
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(pos))


class MultiHeadSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_lin = nn.Linear(H, H)
        self.k_lin = nn.Linear(H, H)
        self.v_lin = nn.Linear(H, H)
        self.out_lin = nn.Linear(H, H)

    def forward(self, x, mask):
        q = _heads(self.q_lin(x), HEADS) / math.sqrt(H // HEADS)
        scores = torch.matmul(q, _heads(self.k_lin(x), HEADS).transpose(2, 3)) + mask
        return self.out_lin(_merge(torch.matmul(scores.softmax(-1), _heads(self.v_lin(x), HEADS))))


class FFN(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(H, INTER)
        self.lin2 = nn.Linear(INTER, H)

    def forward(self, x):
        return self.lin2(F.gelu(self.lin1(x)))


class TransformerBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = MultiHeadSelfAttention()
        self.sa_layer_norm = nn.LayerNorm(H, eps=1e-12)
        self.ffn = FFN()
        self.output_layer_norm = nn.LayerNorm(H, eps=1e-12)

    def forward(self, x, mask):
        x = self.sa_layer_norm(self.attention(x, mask) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class DistilTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.ModuleList([TransformerBlock() for _ in range(LAYERS)])

    def forward(self, x, mask):
        for layer in self.layer:
            x = layer(x, mask)
        return x


class DistilBertModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = DistilEmbeddings()
        self.transformer = DistilTransformer()

    def forward(self, input_ids, attention_mask):
        return self.transformer(self.embeddings(input_ids), _mask(attention_mask))


class DistilBertForSequenceClassification(nn.Module):
    def __init__(self):
        super().__init__()
        self.distilbert = DistilBertModel()
        self.pre_classifier = nn.Linear(H, H)
        self.classifier = nn.Linear(H, 2)

    def forward(self, input_ids, attention_mask):
        pooled = F.relu(self.pre_classifier(self.distilbert(input_ids, attention_mask)[:, 0]))
        return (self.classifier(pooled),)


# ----------------------------------------------------------------------- RoBERTa and ELECTRA
def _bert_config():
    return minibert.BertConfig(vocab_size=VOCAB, hidden_size=H, num_hidden_layers=LAYERS,
                               num_attention_heads=HEADS, intermediate_size=INTER,
                               max_position_embeddings=MAXPOS, type_vocab_size=1, pad_token_id=1)


class RobertaEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.padding_idx = 1
        self.word_embeddings = nn.Embedding(VOCAB, H, padding_idx=1)
        self.position_embeddings = nn.Embedding(MAXPOS, H, padding_idx=1)
        self.token_type_embeddings = nn.Embedding(1, H)
        self.LayerNorm = nn.LayerNorm(H, eps=1e-5)

    def forward(self, input_ids, token_type_ids):
        # create_position_ids_from_input_ids: positions count from padding_idx + 1, pads keep padding_idx.
        mask = input_ids.ne(self.padding_idx).int()
        position_ids = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + self.padding_idx
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x + self.position_embeddings(position_ids))


class RobertaModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = RobertaEmbeddings()
        self.encoder = minibert.BertEncoder(_bert_config())

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.encoder(self.embeddings(input_ids, token_type_ids), _mask(attention_mask))


class ClassificationHead(nn.Module):
    """RobertaClassificationHead / ElectraClassificationHead."""

    def __init__(self, act):
        super().__init__()
        self.dense = nn.Linear(H, H)
        self.out_proj = nn.Linear(H, 2)
        self.act = act

    def forward(self, features):
        x = features[:, 0, :]
        x = torch.tanh(self.dense(x)) if self.act == "tanh" else F.gelu(self.dense(x))
        return self.out_proj(x)


class RobertaForSequenceClassification(nn.Module):
    def __init__(self):
        super().__init__()
        self.roberta = RobertaModel()
        self.classifier = ClassificationHead("tanh")

    def forward(self, input_ids, attention_mask, token_type_ids):
        return (self.classifier(self.roberta(input_ids, attention_mask, token_type_ids)),)


class ElectraEmbeddings(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, e, padding_idx=0)
        self.position_embeddings = nn.Embedding(MAXPOS, e)
        self.token_type_embeddings = nn.Embedding(2, e)
        self.LayerNorm = nn.LayerNorm(e, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(MAXPOS).expand((1, -1)))

    def forward(self, input_ids, token_type_ids):
        pos = self.position_ids[:, :input_ids.size(1)]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x + self.position_embeddings(pos))


class ElectraModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = ElectraEmbeddings(16)
        self.embeddings_project = nn.Linear(16, H)
        cfg = _bert_config()
        cfg.type_vocab_size = 2
        self.encoder = minibert.BertEncoder(cfg)

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embeddings_project(self.embeddings(input_ids, token_type_ids))
        return self.encoder(x, _mask(attention_mask))


class ElectraForSequenceClassification(nn.Module):
    def __init__(self):
        super().__init__()
        self.electra = ElectraModel()
        self.classifier = ClassificationHead("gelu")

    def forward(self, input_ids, attention_mask, token_type_ids):
        return (self.classifier(self.electra(input_ids, attention_mask, token_type_ids)),)


# ------------------------------------------------------------------------------------- GPT-2
class Conv1D(nn.Module):
    """transformers.pytorch_utils.Conv1D: a Linear whose weight is stored [in, out]."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


class GPT2Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("bias", torch.tril(torch.ones(MAXPOS, MAXPOS, dtype=torch.bool)).view(1, 1, MAXPOS, MAXPOS))
        self.c_attn = Conv1D(3 * H, H)
        self.c_proj = Conv1D(H, H)

    def forward(self, x):
        q, k, v = self.c_attn(x).split(H, dim=2)
        q, k, v = _heads(q, HEADS), _heads(k, HEADS), _heads(v, HEADS)
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(H // HEADS)
        s = x.size(1)
        causal = self.bias[:, :, :s, :s]
        w = w.masked_fill(~causal, torch.finfo(w.dtype).min)
        return self.c_proj(_merge(torch.matmul(w.softmax(-1), v)))


class GPT2MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = Conv1D(INTER, H)
        self.c_proj = Conv1D(H, INTER)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class GPT2Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(H, eps=1e-5)
        self.attn = GPT2Attention()
        self.ln_2 = nn.LayerNorm(H, eps=1e-5)
        self.mlp = GPT2MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, H)
        self.wpe = nn.Embedding(MAXPOS, H)
        self.h = nn.ModuleList([GPT2Block() for _ in range(LAYERS)])
        self.ln_f = nn.LayerNorm(H, eps=1e-5)

    def forward(self, input_ids):
        pos = torch.arange(0, input_ids.size(-1), dtype=torch.long).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = GPT2Model()
        self.lm_head = nn.Linear(H, VOCAB, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, input_ids):
        return (self.lm_head(self.transformer(input_ids)),)


# ------------------------------------------------------------------------------ T5 encoder
class T5LayerNorm(nn.Module):
    def __init__(self, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(H))
        self.variance_epsilon = eps

    def forward(self, x):
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.variance_epsilon))


class T5Attention(nn.Module):
    def __init__(self, has_relative_attention_bias):
        super().__init__()
        self.has_relative_attention_bias = has_relative_attention_bias
        self.num_buckets, self.max_distance = 8, 16
        self.q = nn.Linear(H, H, bias=False)
        self.k = nn.Linear(H, H, bias=False)
        self.v = nn.Linear(H, H, bias=False)
        self.o = nn.Linear(H, H, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.num_buckets, HEADS)

    def _bucket(self, relative_position):
        # T5Attention._relative_position_bucket, bidirectional.
        nb = self.num_buckets // 2
        buckets = (relative_position > 0).to(torch.long) * nb
        rp = torch.abs(relative_position)
        max_exact = nb // 2
        is_small = rp < max_exact
        large = max_exact + (torch.log(rp.float() / max_exact) / math.log(self.max_distance / max_exact)
                             * (nb - max_exact)).to(torch.long)
        large = torch.min(large, torch.full_like(large, nb - 1))
        return buckets + torch.where(is_small, rp, large)

    def compute_bias(self, q_len, k_len):
        ctx = torch.arange(q_len, dtype=torch.long)[:, None]
        mem = torch.arange(k_len, dtype=torch.long)[None, :]
        values = self.relative_attention_bias(self._bucket(mem - ctx))
        return values.permute([2, 0, 1]).unsqueeze(0)

    def forward(self, x, mask, position_bias):
        q, k, v = _heads(self.q(x), HEADS), _heads(self.k(x), HEADS), _heads(self.v(x), HEADS)
        scores = torch.matmul(q, k.transpose(3, 2))  # T5 does not scale
        if self.has_relative_attention_bias:
            position_bias = self.compute_bias(x.size(1), x.size(1)) + mask
        return self.o(_merge(torch.matmul((scores + position_bias).softmax(-1), v))), position_bias


class T5LayerSelfAttention(nn.Module):
    def __init__(self, has_relative_attention_bias):
        super().__init__()
        self.SelfAttention = T5Attention(has_relative_attention_bias)
        self.layer_norm = T5LayerNorm()

    def forward(self, x, mask, position_bias):
        y, position_bias = self.SelfAttention(self.layer_norm(x), mask, position_bias)
        return x + y, position_bias


class T5DenseActDense(nn.Module):
    def __init__(self):
        super().__init__()
        self.wi = nn.Linear(H, INTER, bias=False)
        self.wo = nn.Linear(INTER, H, bias=False)

    def forward(self, x):
        return self.wo(F.relu(self.wi(x)))


class T5LayerFF(nn.Module):
    def __init__(self):
        super().__init__()
        self.DenseReluDense = T5DenseActDense()
        self.layer_norm = T5LayerNorm()

    def forward(self, x):
        return x + self.DenseReluDense(self.layer_norm(x))


class T5Block(nn.Module):
    def __init__(self, first):
        super().__init__()
        self.layer = nn.ModuleList([T5LayerSelfAttention(first), T5LayerFF()])

    def forward(self, x, mask, position_bias):
        x, position_bias = self.layer[0](x, mask, position_bias)
        return self.layer[1](x), position_bias


class T5Stack(nn.Module):
    def __init__(self, shared):
        super().__init__()
        self.embed_tokens = shared
        self.block = nn.ModuleList([T5Block(i == 0) for i in range(LAYERS)])
        self.final_layer_norm = T5LayerNorm()

    def forward(self, input_ids, attention_mask):
        x = self.embed_tokens(input_ids)
        mask = _mask(attention_mask)
        position_bias = mask
        for block in self.block:
            x, position_bias = block(x, mask, position_bias)
        return self.final_layer_norm(x)


class T5EncoderModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Embedding(VOCAB, H)
        self.encoder = T5Stack(self.shared)

    def forward(self, input_ids, attention_mask):
        return (self.encoder(input_ids, attention_mask),)


# --------------------------------------------------------------------------------------- ViT
class ViTPatchEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.projection = nn.Conv2d(3, H, kernel_size=8, stride=8)

    def forward(self, pixel_values):
        return self.projection(pixel_values).flatten(2).transpose(1, 2)


class ViTEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, H) * 0.02)
        self.patch_embeddings = ViTPatchEmbeddings()
        self.position_embeddings = nn.Parameter(torch.randn(1, 17, H) * 0.02)

    def forward(self, pixel_values):
        x = self.patch_embeddings(pixel_values)
        x = torch.cat((self.cls_token.expand(x.size(0), -1, -1), x), dim=1)
        return x + self.position_embeddings


class ViTSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)

    def forward(self, x):
        q, k, v = _heads(self.query(x), HEADS), _heads(self.key(x), HEADS), _heads(self.value(x), HEADS)
        return _merge(torch.matmul((torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(H // HEADS)).softmax(-1), v))


class ViTSelfOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(H, H)

    def forward(self, x):
        return self.dense(x)


class ViTAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = ViTSelfAttention()
        self.output = ViTSelfOutput()

    def forward(self, x):
        return self.output(self.attention(x))


class ViTIntermediate(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(H, INTER)

    def forward(self, x):
        return F.gelu(self.dense(x))


class ViTOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(INTER, H)

    def forward(self, x, residual):
        return self.dense(x) + residual


class ViTLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = ViTAttention()
        self.intermediate = ViTIntermediate()
        self.output = ViTOutput()
        self.layernorm_before = nn.LayerNorm(H, eps=1e-12)
        self.layernorm_after = nn.LayerNorm(H, eps=1e-12)

    def forward(self, x):
        x = self.attention(self.layernorm_before(x)) + x
        return self.output(self.intermediate(self.layernorm_after(x)), x)


class ViTEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.ModuleList([ViTLayer() for _ in range(LAYERS)])

    def forward(self, x):
        for layer in self.layer:
            x = layer(x)
        return x


class ViTModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = ViTEmbeddings()
        self.encoder = ViTEncoder()
        self.layernorm = nn.LayerNorm(H, eps=1e-12)

    def forward(self, pixel_values):
        return self.layernorm(self.encoder(self.embeddings(pixel_values)))


class ViTForImageClassification(nn.Module):
    def __init__(self):
        super().__init__()
        self.vit = ViTModel()
        self.classifier = nn.Linear(H, 10)

    def forward(self, pixel_values):
        return (self.classifier(self.vit(pixel_values)[:, 0, :]),)


# ------------------------------------------------------------------- Embedding + LSTM + Linear
class LSTMClassifier(nn.Module):
    """The text classifier of PyTorch's dynamic quantization tutorial (LSTM word language
    model's shape): embedding, a 2-layer LSTM, a Linear on the last step."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 16)
        self.lstm = nn.LSTM(16, H, num_layers=2, batch_first=True)
        self.fc = nn.Linear(H, 3)

    def forward(self, input_ids):
        out, _ = self.lstm(self.embedding(input_ids))
        return self.fc(out[:, -1, :])


# ----------------------------------------------------------------------- an MLP on features
class MLP(nn.Module):
    """Float features in, classes out: no token ids anywhere."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, features):
        return self.fc2(torch.relu(self.fc1(features)))


def bert_like_inputs(with_types=True, batch=2, seq=12, pad=1):
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(2, VOCAB, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, seq - 4:] = 0
    ids[1, seq - 4:] = pad
    if not with_types:
        return ids, mask
    types = torch.zeros(batch, seq, dtype=torch.long)
    return ids, mask, types


def example_inputs(name, batch=2):
    if name in ("zoo_albert", "zoo_electra"):
        ids, mask, types = bert_like_inputs(pad=0, batch=batch)
        types[:, 6:] = 1
        return ids, mask, types
    if name == "zoo_roberta":
        return bert_like_inputs(pad=1, batch=batch)
    if name in ("zoo_distilbert", "zoo_t5"):
        return bert_like_inputs(with_types=False, pad=0, batch=batch)
    if name == "zoo_gpt2":
        return (bert_like_inputs(with_types=False, batch=batch)[0],)
    if name == "zoo_vit":
        return (torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(5)),)
    if name == "zoo_lstm":
        return (bert_like_inputs(with_types=False, batch=batch)[0],)
    if name == "zoo_mlp":
        return (torch.randn(batch, 16, generator=torch.Generator().manual_seed(5)),)
    raise KeyError(name)


MODELS = {
    "zoo_albert": AlbertForSequenceClassification,
    "zoo_distilbert": DistilBertForSequenceClassification,
    "zoo_roberta": RobertaForSequenceClassification,
    "zoo_electra": ElectraForSequenceClassification,
    "zoo_gpt2": GPT2LMHeadModel,
    "zoo_t5": T5EncoderModel,
    "zoo_vit": ViTForImageClassification,
    "zoo_lstm": LSTMClassifier,
    "zoo_mlp": MLP,
}


def build(save):
    """Builds (seeded, initialised, eval) and traces each model, saving it with `save(name, m)`."""
    for name, cls in MODELS.items():
        torch.manual_seed(0)
        m = _init(cls()).eval()
        with torch.no_grad():
            save(name, torch.jit.trace(m, example_inputs(name)))


def write_input_files(outdir):
    """`--inputs` files: for every model, NAME_rows.pt, 8 rows of its forward's arguments as a
    tuple saved with torch.save; for the LSTM classifier and the MLP also NAME.jsonl (one row
    per line, fields named as forward's arguments, plus "label") and NAME.pt (a dict of the
    arguments' rows and "labels")."""
    import json
    import os
    os.makedirs(outdir, exist_ok=True)
    for name in MODELS:
        torch.save(tuple(example_inputs(name, batch=8)), os.path.join(outdir, name + "_rows.pt"))
    g = torch.Generator().manual_seed(17)
    rows = {"zoo_lstm": {"input_ids": torch.randint(2, VOCAB, (24, 12), generator=g)},
            "zoo_mlp": {"features": torch.randn(24, 16, generator=g)}}
    for name, args in rows.items():
        labels = torch.randint(0, 3, (24,), generator=g)
        torch.save(dict(args, labels=labels), os.path.join(outdir, name + ".pt"))
        with open(os.path.join(outdir, name + ".jsonl"), "w") as f:
            for i in range(24):
                row = {k: (v[i].tolist() if v.dtype == torch.long else [round(x, 6) for x in v[i].tolist()])
                       for k, v in args.items()}
                row["label"] = int(labels[i])
                f.write(json.dumps(row) + "\n")
