/** Adam (Kingma & Ba), as TensorFlow's AdamOptimizer with Lucid's learning rate: maximises by stepping along the gradient. */
export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;

  constructor(
    size: number,
    readonly learningRate = 0.05,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-8,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  /** One step uphill: params += lr·m̂/(√v̂ + ε), with the moments of `gradient` (of what is maximised). */
  ascend(params: Float64Array, gradient: Float64Array): void {
    const { m, v, beta1, beta2, epsilon } = this;
    this.t++;
    // TensorFlow's form: the bias corrections folded into the step size.
    const lr = (this.learningRate * Math.sqrt(1 - beta2 ** this.t)) / (1 - beta1 ** this.t);
    for (let i = 0; i < params.length; i++) {
      const g = gradient[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      params[i] += (lr * m[i]) / (Math.sqrt(v[i]) + epsilon);
    }
  }
}
